package sigma

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rule builds a rule with a logsource and a detection.
func rule(t *testing.T, id, logsource, detection string) *Rule {
	t.Helper()
	r, err := ParseRule([]byte("title: " + id + "\nid: " + id + "\nlogsource: " + logsource + "\ndetection:\n" + indent(detection)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ids returns the ids of the rules an event matches, and its source.
func matchIDs(t *testing.T, m *Matcher, ev string) ([]string, string) {
	t.Helper()
	ms, err := m.Match([]byte(ev))
	if err != nil {
		t.Fatalf("match %s: %v", ev, err)
	}
	var out []string
	for _, r := range ms {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return out, m.Source()
}

// ocsfEvent is the shape `vigil ingest` writes: the source in metadata,
// the native fields in unmapped.
func ocsfEvent(class int, product, logName, provider, unmapped string) string {
	md := `"product":{"name":"` + product + `"}`
	if logName != "" {
		md += `,"log_name":"` + logName + `"`
	}
	if provider != "" {
		md += `,"log_provider":"` + provider + `"`
	}
	return `{"class_uid":` + itoa(class) + `,"metadata":{` + md + `},"unmapped":` + unmapped + `}`
}

// TestRouting checks that each rule sees the events of the sources its
// logsource names and no others, across products.
func TestRouting(t *testing.T) {
	rules := []*Rule{
		rule(t, "sshd-kw", "{product: linux, service: sshd}", "kw: ['Corrupted MAC on input']\ncondition: kw"),
		rule(t, "linux-kw", "{product: linux}", "kw: ['Corrupted MAC on input']\ncondition: kw"),
		rule(t, "win-kw", "{product: windows}", "kw: ['Corrupted MAC on input']\ncondition: kw"),
		rule(t, "rdp", "{product: zeek, service: rdp}", "sel:\n  id.orig_h: 10.0.0.1\ncondition: not sel"),
		rule(t, "dns", "{category: dns}", "sel:\n  query|endswith: '.onion'\ncondition: sel"),
		rule(t, "proc", "{product: linux, category: process_creation}", "sel:\n  Image|endswith: '/id'\ncondition: sel"),
		rule(t, "trail", "{product: aws, service: cloudtrail}", "sel:\n  eventName: StopLogging\ncondition: sel"),
	}
	eng, problems := NewEngine(rules, DefaultConfig())
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	m := eng.NewMatcher()
	sshd := ocsfEvent(0, "Linux", "auth", "sshd", `{"message":"error: Corrupted MAC on input."}`)
	for _, c := range []struct {
		name, ev, source string
		want             []string
	}{
		// sshd's records carry log_name auth, which is also Channel: the
		// product routes them, not the Windows channel table.
		{"sshd line", sshd, "linux/sshd", []string{"linux-kw", "sshd-kw"}},
		{"another program", ocsfEvent(0, "Linux", "daemon", "named", `{"message":"Corrupted MAC on input"}`), "linux/syslog", []string{"linux-kw"}},
		{"zeek rdp", ocsfEvent(4001, "Zeek", "rdp", "", `{"id.orig_h":"10.9.9.9"}`), "zeek/rdp", []string{"rdp"}},
		// The rdp rule's "not" must not fire on the other Zeek logs.
		{"zeek files", ocsfEvent(0, "Zeek", "files", "", `{"id.orig_h":"10.9.9.9"}`), "zeek/files", nil},
		{"zeek x509", ocsfEvent(0, "Zeek", "x509", "", `{"certificate.serial":"1"}`), "zeek/x509", nil},
		{"zeek dns", ocsfEvent(4003, "Zeek", "dns", "", `{"query":"abc.onion","id.orig_h":"10.9.9.9"}`), "zeek/dns", []string{"dns"}},
		{"native zeek", `{"_path":"rdp","id_orig_h":"10.9.9.9"}`, "zeek/rdp", []string{"rdp"}},
		{"ocsf dns of another product", `{"class_uid":4003,"metadata":{"product":{"name":"Infoblox"}},"query":{"hostname":"x.onion"}}`, "dns", []string{"dns"}},
		{"unknown product", ocsfEvent(0, "Acme", "", "", `{"message":"Corrupted MAC on input"}`), "ocsf", nil},
		{"sudo command", `{"class_uid":1007,"metadata":{"product":{"name":"Linux"},"log_provider":"sudo"},"process":{"file":{"path":"/usr/bin/id"}}}`, "linux/sudo/process_creation", []string{"proc"}},
		{"sudo failure", `{"class_uid":3002,"metadata":{"product":{"name":"Linux"},"log_provider":"sudo"},"process":{"file":{"path":"/usr/bin/id"}}}`, "linux/sudo", nil},
		{"auditd execve", `{"class_uid":1007,"activity_id":1,"metadata":{"product":{"name":"auditd"}},"process":{"file":{"path":"/usr/bin/id"}}}`, "linux/auditd/process_creation", []string{"proc"}},
		{"cloudtrail", ocsfEvent(6003, "CloudTrail", "", "", `{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com"}`), "aws/cloudtrail", []string{"trail"}},
		{"native cloudtrail", `{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","awsRegion":"eu-west-1"}`, "aws/cloudtrail", []string{"trail"}},
		{"evtx", winEvent("Microsoft-Windows-Sysmon/Operational", 1, `"CommandLine":"Corrupted MAC on input"`), "windows/" + sysmonChannel + "#1", []string{"win-kw"}},
		{"windows channel nobody names", winEvent("Acme/Operational", 7, `"X":"Corrupted MAC on input"`), "windows", []string{"win-kw"}},
		// Nothing says where a flat event came from: every rule runs.
		{"flat", `{"msg":"Corrupted MAC on input","Image":"/usr/bin/id"}`, "", []string{"linux-kw", "proc", "rdp", "sshd-kw", "win-kw"}},
	} {
		got, src := matchIDs(t, m, c.ev)
		if src != c.source || !slices.Equal(got, c.want) {
			t.Errorf("%s: source %q, rules %v; want %q, %v", c.name, src, got, c.source, c.want)
		}
	}
}

// TestNoSourceReported checks the load-time report of a rule no source
// serves, and that it still runs on unrouted events.
func TestNoSourceReported(t *testing.T) {
	r := rule(t, "foo-rule", "{product: foo, service: bar}", "kw: [boom]\ncondition: kw")
	r.Path = "rules/foo.yml"
	eng, problems := NewEngine([]*Rule{r}, DefaultConfig())
	if len(problems) != 1 || !errors.Is(problems[0].Err, ErrNoSource) {
		t.Fatalf("problems = %v, want one ErrNoSource", problems)
	}
	if got, want := problems[0].Err.Error(), "logsource product=foo service=bar matches no configured source"; got != want {
		t.Errorf("report %q, want %q", got, want)
	}
	if eng.Stats().Rules != 1 || !fires(t, eng, `{"x":"boom"}`) {
		t.Error("the rule does not run on an unrouted event")
	}
	if fires(t, eng, ocsfEvent(0, "Linux", "", "sshd", `{"x":"boom"}`)) {
		t.Error("the rule ran on a routed event")
	}
}

// TestSourceFieldMappings checks mappings that hold in one source only.
func TestSourceFieldMappings(t *testing.T) {
	// Security 4688 writes the integrity level as a SID.
	r := rule(t, "il", "{product: windows, category: process_creation}", "sel:\n  IntegrityLevel: High\ncondition: sel")
	eng, _ := NewEngine([]*Rule{r}, DefaultConfig())
	if !fires(t, eng, winEvent("Security", 4688, `"MandatoryLabel":"S-1-16-12288"`)) {
		t.Error("4688 MandatoryLabel S-1-16-12288 is not IntegrityLevel High")
	}
	if fires(t, eng, winEvent("Security", 4688, `"MandatoryLabel":"S-1-16-8192"`)) {
		t.Error("S-1-16-8192 (Medium) matched High")
	}
	sid := rule(t, "sid", "{product: windows, category: process_creation}", "sel:\n  IntegrityLevel: S-1-16-16384\ncondition: sel")
	eng, _ = NewEngine([]*Rule{sid}, DefaultConfig())
	if !fires(t, eng, winEvent("Security", 4688, `"MandatoryLabel":"S-1-16-16384"`)) {
		t.Error("the SID itself is not an IntegrityLevel value")
	}

	// Linux process fields come from the OCSF process in the two
	// process_creation sources, and not in another source.
	proc := rule(t, "proc", "{product: linux}", "sel:\n  CommandLine|contains: 'chmod 777'\n  User: root\ncondition: sel")
	eng, _ = NewEngine([]*Rule{proc}, DefaultConfig())
	sudo := `{"class_uid":1007,"metadata":{"product":{"name":"Linux"},"log_provider":"sudo"},"process":{"cmd_line":"/bin/chmod 777 /tmp/x","user":{"name":"root"}}}`
	if !fires(t, eng, sudo) {
		t.Error("sudo COMMAND (process.cmd_line) is not CommandLine")
	}
	other := strings.Replace(sudo, `"sudo"`, `"cron"`, 1)
	if fires(t, eng, other) {
		t.Error("process fields mapped outside the process_creation sources")
	}

	// Zeek written with underscores reaches the dotted Sigma names, and
	// http's fields are the proxy taxonomy's.
	z := rule(t, "z", "{category: proxy}", "sel:\n  c-uri|endswith: '.hta'\n  dst_ip: 192.0.2.7\ncondition: sel")
	eng, _ = NewEngine([]*Rule{z}, DefaultConfig())
	for _, ev := range []string{
		ocsfEvent(4002, "Zeek", "http", "", `{"uri":"/a/b.hta","id.resp_h":"192.0.2.7"}`),
		ocsfEvent(4002, "Zeek", "http", "", `{"uri":"/a/b.hta","id_resp_h":"192.0.2.7"}`),
		`{"_path":"http","uri":"/a/b.hta","id_resp_h":"192.0.2.7"}`,
	} {
		if !fires(t, eng, ev) {
			t.Errorf("proxy rule does not fire on %s", ev)
		}
	}
}

// TestConfigSources checks that a config's sources extend the table: a
// product of one's own, routed by a field of one's own.
func TestConfigSources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sigma.yml")
	src := `sources:
  - name: acme/audit
    product: acme
    services: [audit]
    match: [{metadata.product.name: Acme}]
    fields: {Operation: [api.operation]}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Logsources.Source("linux/sshd"); !ok {
		t.Error("the default sources are gone")
	}
	r := rule(t, "acme", "{product: acme, service: audit}", "sel:\n  Operation: DeleteAll\ncondition: sel")
	eng, problems := NewEngine([]*Rule{r}, cfg)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	m := eng.NewMatcher()
	if got, src := matchIDs(t, m, `{"class_uid":6003,"metadata":{"product":{"name":"ACME"}},"api":{"operation":"DeleteAll"}}`); len(got) != 1 || src != "acme/audit" {
		t.Errorf("acme event: rules %v, source %q", got, src)
	}
	if _, problems := NewEngine([]*Rule{r}, DefaultConfig()); len(problems) != 1 || !errors.Is(problems[0].Err, ErrNoSource) {
		t.Errorf("without the config: problems %v, want the rule reported", problems)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("sources:\n  - name: x\n    product: y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(bad); err == nil {
		t.Error("a source without match loaded")
	}
	if err := os.WriteFile(bad, []byte("mappings:\n  aliases: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(bad); err == nil {
		t.Error("a misspelt key loaded")
	}
}

// TestLogsourceMappingOnTableSource checks that a mapping.logsources
// entry for a channel and event id the table names already adds its
// fields to that source, rather than a second one.
func TestLogsourceMappingOnTableSource(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mapping.Logsources = append(cfg.Mapping.Logsources, LogsourceMapping{
		Channel: "Security", EventIDs: []int{4688}, Fields: map[string][]string{"TokenElevation": {"TokenElevationType"}},
	})
	r := rule(t, "te", "{product: windows, service: security}", "sel:\n  TokenElevation: '%%1937'\ncondition: sel")
	eng, problems := NewEngine([]*Rule{r}, cfg)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if got, want := len(eng.Sources()), len(DefaultLogsources().Sources); got != want {
		t.Errorf("%d sources, want the table's %d", got, want)
	}
	if !fires(t, eng, winEvent("Security", 4688, `"TokenElevationType":"%%1937"`)) {
		t.Error("the mapped field is not TokenElevation in Security 4688")
	}
	if fires(t, eng, winEvent("Security", 4689, `"TokenElevationType":"%%1937"`)) {
		t.Error("the mapping holds beyond its event id")
	}
}
