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
	rules := filepath.Join(data, "rules", "windows", "process_creation")
	var out, errOut bytes.Buffer
	if code := run([]string{"detect", "--quiet", "--rules", rules, filepath.Join(dir, "missing.json")}, &out, &errOut); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "no such file") {
		t.Errorf("missing file: stderr %q does not say so", errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"detect"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "name event files") {
		t.Errorf("no arguments: exit %d, stderr %q; want 2 and a hint", code, errOut.String())
	}
}

// TestDetectEveryFile runs offline detection over a folder as Zeek and
// evtx_dump leave them: a .log of NDJSON with a line that is not JSON, a
// file without an extension, a binary file, plus standard input. Every
// text file is read, the binary one is skipped with a warning, and the
// summary counts it all.
func TestDetectEveryFile(t *testing.T) {
	data := sigmatest.Data(t)
	caseDir := filepath.Join(data, "regression_data", "rules", "windows", "process_creation", "proc_creation_win_certutil_download")
	files, _ := filepath.Glob(filepath.Join(caseDir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("regression case %s: %d event files", caseDir, len(files))
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var event bytes.Buffer
	if err := json.Compact(&event, raw); err != nil {
		t.Fatal(err)
	}
	wantID := strings.TrimSuffix(filepath.Base(files[0]), ".json")
	dir := t.TempDir()
	write := func(name string, content []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("conn.log", []byte("#fields\tts\n"+event.String()+"\n{\"ts\":1}\n"))
	write("events", []byte(event.String()))
	write("capture.evtx", append([]byte("ElfFile\x00"), make([]byte, 64)...))

	stdin, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	stdin.Write(event.Bytes())
	stdin.Seek(0, 0)
	oldStdin := os.Stdin
	os.Stdin = stdin
	defer func() { os.Stdin = oldStdin }()

	var out, errOut bytes.Buffer
	rules := filepath.Join(data, "rules", "windows", "process_creation")
	if code := run([]string{"detect", "--quiet", "--rules", rules, dir, "-"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	fired := map[string]int{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m struct {
			RuleID string `json:"rule_id"`
			File   string `json:"file"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("output line is not JSON: %v", err)
		}
		if m.RuleID == wantID {
			fired[filepath.Base(m.File)]++
		}
	}
	for _, f := range []string{"conn.log", "events", "-"} {
		if fired[f] != 1 {
			t.Errorf("rule %s fired %d times on %s, want 1 (all: %v)", wantID, fired[f], f, fired)
		}
	}
	stderr := errOut.String()
	for _, want := range []string{
		"capture.evtx: skipped: binary content",
		"conn.log:1: not a JSON object or array (skipped)",
		"4 files (1 skipped as binary), 4 events, 1 undecodable line, ",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
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
		{[]string{"--brokers", "127.0.0.1:1"}, 2, "no --rules given and stat rules: no such file"},
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

// TestDetectReportsNoSource loads SigmaHQ's rules/linux offline: the
// rules whose logsource no source serves are named one by one (not with
// --quiet), and counted in the summary.
func TestDetectReportsNoSource(t *testing.T) {
	data := sigmatest.Data(t)
	ev := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(ev, []byte(`{"class_uid":0,"metadata":{"product":{"name":"Linux"},"log_provider":"sshd"},"message":"error: Corrupted MAC on input."}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"detect", "--rules", filepath.Join(data, "rules", "linux"), ev}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := "vigil detect: rule " + filepath.Join(data, "rules", "linux", "file_event", "file_event_lnx_doas_conf_creation.yml") +
		": logsource product=linux category=file_event matches no configured source"
	if !strings.Contains(errOut.String(), want) || !strings.Contains(errOut.String(), "match no configured source), 0 not loaded") {
		t.Errorf("stderr lacks %q or the count:\n%s", want, errOut.String())
	}
	// The sshd rule fires on the generic event of sshd's.
	if !strings.Contains(out.String(), `"rule_id":"e76b413a-83d0-4b94-8e4c-85db4a5b8bdc"`) {
		t.Errorf("Suspicious OpenSSH Daemon Error did not fire:\n%s", out.String())
	}
	errOut.Reset()
	if code := run([]string{"detect", "--quiet", "--rules", filepath.Join(data, "rules", "linux"), ev}, &out, &errOut); code != 0 || strings.Contains(errOut.String(), "matches no configured source") {
		t.Errorf("--quiet: exit %d, still names rules:\n%s", code, errOut.String())
	}
}
