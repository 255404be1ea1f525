package exportconfig

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/export"
)

// TestDocsMatchCode keeps docs/export.md true to the code: every YAML
// example in it parses as a configuration, and the metrics it lists are
// exactly those the jobs register.
func TestDocsMatchCode(t *testing.T) {
	raw, err := os.ReadFile("../../../docs/export.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("docs/export.md has %d YAML examples; want the first export's and the reference", len(blocks))
	}
	for i, b := range blocks {
		if _, err := Parse([]byte(b[1])); err != nil {
			t.Errorf("YAML example %d of docs/export.md: %v\n%s", i+1, err, b[1])
		}
	}

	reg := prometheus.NewRegistry()
	m, err := export.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.For("s") // a child of each vector, so that Gather names them
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var code []string
	for _, f := range fams {
		code = append(code, f.GetName())
	}
	var documented []string
	for _, name := range regexp.MustCompile(`vigil_export_[a-z_]+`).FindAllString(doc, -1) {
		if !slices.Contains(documented, name) {
			documented = append(documented, name)
		}
	}
	slices.Sort(code)
	slices.Sort(documented)
	if !slices.Equal(code, documented) {
		t.Errorf("docs/export.md names the metrics\n  %s\nthe code registers\n  %s", strings.Join(documented, ", "), strings.Join(code, ", "))
	}
}
