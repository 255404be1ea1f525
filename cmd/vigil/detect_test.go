package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/sigma/sigmatest"
)

func TestDetectOffline(t *testing.T) {
	data := sigmatest.Data(t)
	caseDir := filepath.Join(data, "regression_data", "rules", "windows", "process_creation", "proc_creation_win_certutil_download")
	files, _ := filepath.Glob(filepath.Join(caseDir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("regression case %s: %d event files", caseDir, len(files))
	}
	wantID := strings.TrimSuffix(filepath.Base(files[0]), ".json")
	var out, errOut bytes.Buffer
	code := run([]string{"detect", "--quiet", "--rules", filepath.Join(data, "rules", "windows"), files[0]}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	found := false
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		lines++
		var m struct {
			RuleID    string          `json:"rule_id"`
			RuleTitle string          `json:"rule_title"`
			File      string          `json:"file"`
			Index     *int            `json:"index"`
			Event     json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("output line %d is not JSON: %v: %s", lines, err, sc.Text())
		}
		if m.RuleTitle == "" || m.File != files[0] || m.Index == nil || *m.Index != 0 {
			t.Errorf("line %d lacks title, file or index: %s", lines, sc.Text())
		}
		var ev map[string]any
		if err := json.Unmarshal(m.Event, &ev); err != nil || ev["Event"] == nil {
			t.Errorf("line %d: event not carried: %v", lines, err)
		}
		found = found || m.RuleID == wantID
	}
	if !found {
		t.Errorf("rule %s did not fire; output:\n%s", wantID, out.String())
	}
	if !strings.Contains(errOut.String(), "rules loaded") {
		t.Errorf("stderr lacks the load summary: %s", errOut.String())
	}
}

func TestDetectUnreadable(t *testing.T) {
	data := sigmatest.Data(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"a": 1} {"b": `), 0o644); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(data, "rules", "windows", "process_creation")
	for _, c := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing.json"), "no such file"},
		{bad, "bad.json"},
	} {
		var out, errOut bytes.Buffer
		code := run([]string{"detect", "--quiet", "--rules", rules, c.path}, &out, &errOut)
		if code == 0 {
			t.Errorf("%s: exit 0", c.path)
		}
		if !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%s: stderr %q lacks %q", c.path, errOut.String(), c.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"detect"}, &out, &errOut); code != 2 {
		t.Errorf("no arguments: exit %d, want 2", code)
	}
}

// TestDetectStreamFlags checks the streaming mode's argument handling
// (the consumer loop itself is tested in internal/detect and internal/e2e).
func TestDetectStreamFlags(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--brokers", "127.0.0.1:1"}, 2, "Usage"},
		{[]string{"--brokers", "127.0.0.1:1", "--rules", empty, "--start", "middle"}, 2, "--start"},
		{[]string{"--brokers", "127.0.0.1:1", "--rules", empty, "--log-level", "loud"}, 2, "loud"},
		{[]string{"--brokers", "127.0.0.1:1", "--rules", empty}, 1, "no usable rule"},
		{[]string{"--brokers", "127.0.0.1:1", "--rules", filepath.Join(empty, "missing")}, 1, "missing"},
		{[]string{"--brokers", "127.0.0.1:1", "--rules", empty, "--topic-regex", "("}, 1, "topic regex"},
		{[]string{"--brokers", "127.0.0.1:1", "--rules", empty, "--topic-regex", "^ocsf", "--topics", "a"}, 2, "exclusive"},
	} {
		var out, errOut bytes.Buffer
		code := detectMain(c.args, &out, &errOut, func(string) string { return "" })
		if code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, errOut.String(), c.code, c.want)
		}
	}
}
