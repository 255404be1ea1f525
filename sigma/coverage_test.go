package sigma

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// coveredFolders are the SigmaHQ folders whose every rule the default
// table routes to a source `vigil ingest` writes (docs/detection.md,
// "What each source serves"): their load-time report must be empty.
var coveredFolders = []string{
	"rules/linux/builtin", "rules/linux/auditd", "rules/linux/process_creation",
	"rules/network/zeek", "rules/network/dns", "rules/network/firewall",
	"rules/web/proxy_generic", "rules/web/webserver_generic", "rules/web/product",
	"rules/cloud/aws", "rules/cloud/azure", "rules/cloud/gcp", "rules/cloud/m365",
	"rules/identity/okta", "rules/application/github",
}

// reportedFolders are loaded whole: every rule in them no source serves
// must be reported, and its logsource listed in docs/detection.md.
var reportedFolders = []string{"rules/linux", "rules/network", "rules/cloud", "rules/web", "rules/identity", "rules/application", "rules/category"}

// TestSigmaHQCoverage loads SigmaHQ's non-Windows rule folders with the
// default routing table: the folders Vigil claims are served whole, and
// every logsource no source serves is named in docs/detection.md.
func TestSigmaHQCoverage(t *testing.T) {
	data := sigmatest.Data(t)
	noSource := func(dir string) []LoadProblem {
		rules, _, err := LoadRules(filepath.Join(data, dir))
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) == 0 {
			t.Fatalf("%s: no rules", dir)
		}
		_, problems := NewEngine(rules, DefaultConfig())
		var out []LoadProblem
		for _, p := range problems {
			if errors.Is(p.Err, ErrNoSource) {
				out = append(out, p)
			}
		}
		return out
	}
	for _, dir := range coveredFolders {
		for _, p := range noSource(dir) {
			t.Errorf("%s is covered, but rule %s: %v", dir, p.Path, p.Err)
		}
	}
	raw, err := os.ReadFile(filepath.Join("..", "docs", "detection.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(raw)), " ") // as read, whatever the line breaks
	var listed []string
	for _, dir := range reportedFolders {
		for _, p := range noSource(dir) {
			ls := strings.TrimSuffix(strings.TrimPrefix(p.Err.Error(), "logsource "), " matches no configured source")
			if slices.Contains(listed, ls) {
				continue
			}
			listed = append(listed, ls)
			if !strings.Contains(doc, "`"+ls+"`") {
				t.Errorf("docs/detection.md does not list `%s` (rules no source serves, e.g. %s)", ls, p.Path)
			}
		}
	}
	t.Logf("%d logsources of %v no source serves, each listed in docs/detection.md", len(listed), reportedFolders)
}
