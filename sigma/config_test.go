package sigma

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sigma.yml")
	src := `mapping:
  aliases:
    Image: [process.file.path]
  strip_prefixes: ["unmapped."]
placeholders:
  admins: [alice, bob]
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	// An OCSF-shaped event reaches the Sigma field Image through the alias.
	runCases(t, []modCase{
		{"alias", "sel:\n  Image|endswith: '\\cmd.exe'\n  User|expand: '%admins%'\ncondition: sel",
			[]string{`{"process":{"file":{"path":"C:\\x\\cmd.exe"}},"unmapped":{"User":"bob"}}`},
			[]string{`{"process":{"file":{"path":"C:\\x\\cmd.exe"}},"unmapped":{"User":"eve"}}`}},
	}, cfg)
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yml")); err == nil {
		t.Error("missing config loaded")
	}
}

// winEvent is an evtx_dump-shaped event of one channel and event id.
func winEvent(channel string, id int, data string) string {
	return `{"Event":{"System":{"Channel":"` + channel + `","EventID":` + itoa(id) + `},"EventData":{` + data + `}}}`
}

// TestLogsourceFieldMapping checks the default Security 4688 mapping:
// process_creation rules written for Sysmon's Image and ParentImage match
// the NewProcessName and ParentProcessName of a 4688 event, and of no
// other event.
func TestLogsourceFieldMapping(t *testing.T) {
	src := "title: t\nid: r\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n    ParentImage|endswith: '\\cmd.exe'\n    CommandLine|contains: '/all'\n  condition: sel\n"
	r, err := ParseRule([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	wide := *r // the same detection for every Windows event
	wide.Logsource = Logsource{Product: "windows"}
	eng, _ := NewEngine([]*Rule{r, &wide}, DefaultConfig())
	data := `"NewProcessName":"C:\\Windows\\System32\\whoami.exe","ParentProcessName":"C:\\Windows\\System32\\cmd.exe","CommandLine":"whoami /all"`
	m := eng.NewMatcher()
	ms, err := m.Match([]byte(winEvent("Security", 4688, data)))
	if err != nil || len(ms) != 2 {
		t.Errorf("Security 4688: %d matches (%v), want both rules", len(ms), err)
	}
	if v, _ := m.FieldValue("Image"); v != `C:\Windows\System32\whoami.exe` {
		t.Errorf("Image of a 4688 event = %q, want its NewProcessName", v)
	}
	for _, ev := range []string{
		winEvent("Security", 4624, data),                                                             // another Security event: no mapping
		winEvent("Microsoft-Windows-Sysmon/Operational", 1, data),                                    // Sysmon names the field Image
		`{"NewProcessName":"c:\\whoami.exe","ParentProcessName":"c:\\cmd.exe","CommandLine":"/all"}`, // no channel
	} {
		if ms, _ := m.Match([]byte(ev)); len(ms) != 0 {
			t.Errorf("%s: %d matches, want none", ev, len(ms))
		}
	}
	// The Sysmon names keep working.
	sysmon := `"Image":"C:\\Windows\\System32\\whoami.exe","ParentImage":"C:\\Windows\\System32\\cmd.exe","CommandLine":"whoami /all"`
	if ms, _ := m.Match([]byte(winEvent("Microsoft-Windows-Sysmon/Operational", 1, sysmon))); len(ms) != 2 {
		t.Errorf("Sysmon 1: %d matches, want 2", len(ms))
	}
}

func TestLoadConfigLogsources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sigma.yml")
	src := `mapping:
  strip_prefixes: [Event.EventData., Event.System.]
  logsources:
    - channel: Application
      event_ids: [1000]
      fields:
        Image: [AppPath]
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	runCases(t, []modCase{
		{"application 1000", "sel:\n  Image|endswith: '\\app.exe'\ncondition: sel",
			[]string{winEvent("Application", 1000, `"AppPath":"C:\\x\\APP.exe"`)},
			[]string{winEvent("Application", 1001, `"AppPath":"C:\\x\\app.exe"`), winEvent("Security", 1000, `"AppPath":"C:\\x\\app.exe"`)}},
	}, cfg)
}
