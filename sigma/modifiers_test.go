package sigma

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// compileOne builds an engine from one rule's detection YAML.
func compileOne(t *testing.T, detection string, cfg Config) (*Engine, error) {
	t.Helper()
	src := "title: t\nid: test-rule\nlogsource:\n  product: windows\ndetection:\n" + indent(detection)
	r, err := ParseRule([]byte(src))
	if err != nil {
		return nil, err
	}
	eng, problems := NewEngine([]*Rule{r}, cfg)
	if len(problems) > 0 {
		return eng, problems[0].Err
	}
	return eng, nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func fires(t *testing.T, eng *Engine, event string) bool {
	t.Helper()
	ms, err := eng.NewMatcher().Match([]byte(event))
	if err != nil {
		t.Fatalf("match %s: %v", event, err)
	}
	return len(ms) == 1
}

type modCase struct {
	name, detection string
	match, nomatch  []string
}

func runCases(t *testing.T, cases []modCase, cfg Config) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eng, err := compileOne(t, c.detection, cfg)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for _, ev := range c.match {
				if !fires(t, eng, ev) {
					t.Errorf("did not fire on %s", ev)
				}
			}
			for _, ev := range c.nomatch {
				if fires(t, eng, ev) {
					t.Errorf("fired on %s", ev)
				}
			}
		})
	}
}

func TestModifiers(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	runCases(t, []modCase{
		{"plain is case-insensitive equality", "sel:\n  Image: 'C:\\Windows\\cmd.exe'\ncondition: sel",
			[]string{`{"Image":"c:\\windows\\CMD.EXE"}`}, []string{`{"Image":"c:\\windows\\cmd.exe2"}`, `{"Other":"c:\\windows\\cmd.exe"}`}},
		{"wildcards * and ?", "sel:\n  Image: '*\\cm?.exe'\ncondition: sel",
			[]string{`{"Image":"x\\cmd.exe"}`, `{"Image":"\\cmX.exe"}`}, []string{`{"Image":"x\\cmdd.exe"}`}},
		{"escaped wildcard is literal", "sel:\n  Image: 'a\\*b'\ncondition: sel",
			[]string{`{"Image":"a*b"}`}, []string{`{"Image":"axxb"}`}},
		{"contains", "sel:\n  CommandLine|contains: ' -enc '\ncondition: sel",
			[]string{`{"CommandLine":"powershell -ENC abc"}`}, []string{`{"CommandLine":"powershell -encoded"}`}},
		{"startswith", "sel:\n  CommandLine|startswith: 'cmd'\ncondition: sel",
			[]string{`{"CommandLine":"CMD /c"}`}, []string{`{"CommandLine":"x cmd"}`}},
		{"endswith", "sel:\n  Image|endswith: '\\rundll32.exe'\ncondition: sel",
			[]string{`{"Image":"C:\\Windows\\System32\\RUNDLL32.exe"}`}, []string{`{"Image":"rundll32.exe.bak"}`}},
		{"value list is OR", "sel:\n  Image|endswith:\n    - '\\a.exe'\n    - '\\b.exe'\ncondition: sel",
			[]string{`{"Image":"x\\b.exe"}`}, []string{`{"Image":"x\\c.exe"}`}},
		{"all", "sel:\n  CommandLine|contains|all:\n    - 'a1'\n    - 'b2'\ncondition: sel",
			[]string{`{"CommandLine":"b2 a1"}`}, []string{`{"CommandLine":"a1 only"}`}},
		{"cased", "sel:\n  CommandLine|contains|cased: 'Invoke'\ncondition: sel",
			[]string{`{"CommandLine":"x Invoke y"}`}, []string{`{"CommandLine":"x invoke y"}`}},
		{"re", "sel:\n  CommandLine|re: '^a[0-9]+z$'\ncondition: sel",
			[]string{`{"CommandLine":"a123z"}`}, []string{`{"CommandLine":"A123Z"}`, `{"CommandLine":"a12"}`}},
		{"re i", "sel:\n  CommandLine|re|i: '^a[0-9]+z$'\ncondition: sel",
			[]string{`{"CommandLine":"A123Z"}`}, nil},
		{"re m", "sel:\n  CommandLine|re|m: '^b$'\ncondition: sel",
			[]string{`{"CommandLine":"a\nb\nc"}`}, []string{`{"CommandLine":"ab"}`}},
		{"re s", "sel:\n  CommandLine|re|s: 'a.b'\ncondition: sel",
			[]string{`{"CommandLine":"a\nb"}`}, nil},
		{"windash", "sel:\n  CommandLine|windash|contains: ' -exec '\ncondition: sel",
			[]string{`{"CommandLine":"x -exec y"}`, `{"CommandLine":"x /exec y"}`, `{"CommandLine":"x \u2013exec y"}`, `{"CommandLine":"x \u2014exec y"}`, `{"CommandLine":"x \u2015exec y"}`},
			[]string{`{"CommandLine":"x +exec y"}`}},
		{"cidr", "sel:\n  DestinationIp|cidr:\n    - '10.0.0.0/8'\n    - 'fe80::/10'\ncondition: sel",
			[]string{`{"DestinationIp":"10.1.2.3"}`, `{"DestinationIp":"fe80::1"}`}, []string{`{"DestinationIp":"11.0.0.1"}`, `{"DestinationIp":"nope"}`}},
		{"base64", "sel:\n  CommandLine|base64|contains: 'http://'\ncondition: sel",
			[]string{`{"CommandLine":"x ` + b64([]byte("http://")) + ` y"}`}, []string{`{"CommandLine":"http://"}`}},
		{"base64offset", "sel:\n  CommandLine|base64offset|contains: 'IEX'\ncondition: sel",
			[]string{`{"CommandLine":"` + b64([]byte("IEX(")) + `"}`, `{"CommandLine":"` + b64([]byte("aIEX(")) + `"}`, `{"CommandLine":"` + b64([]byte("abIEX(")) + `"}`},
			[]string{`{"CommandLine":"` + b64([]byte("nothing here")) + `"}`}},
		{"utf16le base64offset", "sel:\n  CommandLine|utf16le|base64offset|contains: 'IEX'\ncondition: sel",
			[]string{`{"CommandLine":"` + b64([]byte("I\x00E\x00X\x00(\x00")) + `"}`}, nil},
		{"wide base64", "sel:\n  CommandLine|wide|base64: 'ab'\ncondition: sel",
			[]string{`{"CommandLine":"` + b64([]byte("a\x00b\x00")) + `"}`}, nil},
		{"utf16be base64", "sel:\n  CommandLine|utf16be|base64: 'ab'\ncondition: sel",
			[]string{`{"CommandLine":"` + b64([]byte("\x00a\x00b")) + `"}`}, nil},
		{"utf16 base64 (BOM)", "sel:\n  CommandLine|utf16|base64: 'ab'\ncondition: sel",
			[]string{`{"CommandLine":"` + b64([]byte("\xff\xfea\x00b\x00")) + `"}`}, nil},
		{"exists true", "sel:\n  User|exists: true\ncondition: sel",
			[]string{`{"User":"x"}`, `{"User":""}`}, []string{`{"Other":"x"}`, `{"User":null}`}},
		{"exists false", "sel:\n  User|exists: false\ncondition: sel",
			[]string{`{"Other":"x"}`}, []string{`{"User":"x"}`}},
		{"fieldref", "sel:\n  ParentImage|fieldref: Image\ncondition: sel",
			[]string{`{"Image":"a.exe","ParentImage":"A.EXE"}`}, []string{`{"Image":"a.exe","ParentImage":"b.exe"}`, `{"ParentImage":"b.exe"}`}},
		{"fieldref endswith", "sel:\n  CommandLine|fieldref|endswith: Image\ncondition: sel",
			[]string{`{"Image":"a.exe","CommandLine":"run a.exe"}`}, []string{`{"Image":"a.exe","CommandLine":"a.exe run"}`}},
		{"gt", "sel:\n  Size|gt: 10\ncondition: sel", []string{`{"Size":11}`, `{"Size":"12"}`}, []string{`{"Size":10}`, `{"Size":"x"}`}},
		{"gte", "sel:\n  Size|gte: 10\ncondition: sel", []string{`{"Size":10}`}, []string{`{"Size":9.5}`}},
		{"lt", "sel:\n  Size|lt: 10\ncondition: sel", []string{`{"Size":9}`}, []string{`{"Size":10}`}},
		{"lte", "sel:\n  Size|lte: 10\ncondition: sel", []string{`{"Size":10}`}, []string{`{"Size":11}`}},
		{"number value", "sel:\n  EventID: 4688\ncondition: sel", []string{`{"EventID":4688}`, `{"EventID":"4688"}`}, []string{`{"EventID":46880}`}},
		{"null", "sel:\n  User: null\ncondition: sel", []string{`{"Other":1}`, `{"User":null}`}, []string{`{"User":"x"}`}},
		{"empty string", "sel:\n  User: ''\ncondition: sel", []string{`{"User":""}`}, []string{`{"User":"x"}`, `{"Other":1}`}},
		{"array values", "sel:\n  Tags|contains: evil\ncondition: sel", []string{`{"Tags":["good","EVIL one"]}`}, []string{`{"Tags":["good"]}`}},
		{"nested dotted field", "sel:\n  process.name: cmd.exe\ncondition: sel", []string{`{"process":{"name":"cmd.exe"}}`, `{"process.name":"cmd.exe"}`}, nil},
		{"evtx EventData and System", "sel:\n  EventID: 1\n  Image|endswith: '\\x.exe'\n  Provider_Name: Microsoft-Windows-Sysmon\ncondition: sel",
			[]string{`{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":1},"EventData":{"Image":"c:\\x.exe"}}}`}, nil},
		{"key with spaces", "sel:\n  SourceName: 'Real-Time Protection'\ncondition: sel", []string{`{"Event":{"EventData":{"Source Name":"Real-Time Protection"}}}`}, nil},
		{"keywords", "keywords:\n  - 'mimikatz'\n  - 'sekurlsa'\ncondition: keywords", []string{`{"a":{"b":"run SEKURLSA::x"}}`}, []string{`{"a":"clean"}`}},
		{"keywords all", "keywords:\n  '|all':\n    - 'foo'\n    - 'bar'\ncondition: keywords", []string{`{"a":"foo","b":"bar"}`}, []string{`{"a":"foo"}`}},
		{"list of maps is OR", "sel:\n  - Image: a\n  - User: b\ncondition: sel", []string{`{"User":"b"}`, `{"Image":"a"}`}, []string{`{"Image":"b"}`}},
	}, DefaultConfig())
}

func TestExpand(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Placeholders = map[string][]string{"admins": {"alice", "bob"}}
	runCases(t, []modCase{
		{"expand", "sel:\n  User|expand: 'corp\\%admins%'\ncondition: sel", []string{`{"User":"CORP\\bob"}`}, []string{`{"User":"corp\\eve"}`}},
	}, cfg)
	_, err := compileOne(t, "sel:\n  User|expand: '%missing%'\ncondition: sel", DefaultConfig())
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing placeholder: err = %v, want unsupported naming it", err)
	}
}

func TestConditions(t *testing.T) {
	det := "sel_a:\n  A: '1'\nsel_b:\n  B: '1'\nfilter:\n  C: '1'\n"
	a, b, ab, abc, none := `{"A":"1"}`, `{"B":"1"}`, `{"A":"1","B":"1"}`, `{"A":"1","B":"1","C":"1"}`, `{"D":"1"}`
	runCases(t, []modCase{
		{"and", det + "condition: sel_a and sel_b", []string{ab}, []string{a, b}},
		{"or", det + "condition: sel_a or sel_b", []string{a, b}, []string{none}},
		{"not", det + "condition: sel_a and not filter", []string{a}, []string{`{"A":"1","C":"1"}`}},
		{"precedence: and binds tighter", det + "condition: sel_a or sel_b and filter", []string{a}, []string{b}},
		{"parentheses", det + "condition: (sel_a or sel_b) and not filter", []string{a, b}, []string{abc}},
		{"1 of wildcard", det + "condition: 1 of sel_*", []string{a, b}, []string{none}},
		{"all of wildcard", det + "condition: all of sel_*", []string{ab}, []string{a}},
		{"1 of them", det + "condition: 1 of them", []string{`{"C":"1"}`}, []string{none}},
		{"all of them", det + "condition: all of them", []string{abc}, []string{ab}},
		{"not 1 of", det + "condition: sel_a and not 1 of filter*", []string{a}, []string{`{"A":"1","C":"1"}`}},
		{"condition list is OR", det + "condition:\n  - sel_a and sel_b\n  - filter", []string{ab, `{"C":"1"}`}, []string{a}},
		{"not not", det + "condition: not not sel_a", []string{a}, []string{b}},
	}, DefaultConfig())
}

func TestUnsupportedReported(t *testing.T) {
	for _, c := range []struct{ detection, want string }{
		{"sel:\n  A|bogus: x\ncondition: sel", "modifier bogus"},
		{"sel:\n  A: x\ncondition: sel | count() > 5", "aggregation"},
		{"sel:\n  A|re: '(?<=x)y'\ncondition: sel", "regex"},
	} {
		_, err := compileOne(t, c.detection, DefaultConfig())
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want unsupported %q", c.detection, err, c.want)
		}
	}
	if _, err := compileOne(t, "sel:\n  A: x\ncondition: nosuch", DefaultConfig()); err == nil {
		t.Error("unknown identifier compiled")
	}
	if _, err := ParseRule([]byte("title: c\ncorrelation:\n  type: value_sum\n")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("value_sum correlation rule: err = %v", err)
	}
}

func TestLogsourceRouting(t *testing.T) {
	src := "title: t\nid: r\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  sel:\n    Image: x\n  condition: sel\n"
	r, err := ParseRule([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	eng, _ := NewEngine([]*Rule{r}, DefaultConfig())
	sysmon := func(id int) string {
		return `{"Event":{"System":{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":` + itoa(id) + `},"EventData":{"Image":"x"}}}`
	}
	if !fires(t, eng, sysmon(1)) {
		t.Error("process_creation rule did not fire on Sysmon 1")
	}
	if fires(t, eng, sysmon(11)) {
		t.Error("process_creation rule fired on Sysmon 11 (file_event)")
	}
	if !fires(t, eng, `{"Image":"x"}`) {
		t.Error("event without Channel is not routed to every rule")
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pat, v string
		want   bool
	}{
		{"a*b", "ab", true}, {"a*b", "axxb", true}, {"a*b", "axxbc", false}, {"*", "", true},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*a*a*", "xaya", true}, {"*ab", "aab", true},
	} {
		if got := globMatch(parseSigmaString(c.pat), c.v); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.pat, c.v, got)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	eng, _ := compileOne(t, "sel:\n  A: x\ncondition: sel", DefaultConfig())
	m := eng.NewMatcher()
	for _, bad := range []string{`{"A":`, `{"A":"x"} junk`, `{A:1}`, `[1,2`, `"\q"`} {
		if _, err := m.Match([]byte(bad)); err == nil {
			t.Errorf("decoded invalid JSON %s", bad)
		}
	}
	if ms, err := m.Match([]byte(`{"A":"\u0078"}`)); err != nil || len(ms) != 1 {
		t.Errorf("unicode escape: %v %v", ms, err)
	}
}
