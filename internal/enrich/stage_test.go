package enrich

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/intel"
	"github.com/vigilhq/vigil/internal/server/servertest"
	"github.com/vigilhq/vigil/sigma"
	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// The tests run a real broker in-process and talk to it over TCP with
// franz-go, with MaxMind's test databases, MISP warninglists and a STIX
// bundle from ../shared/data and the tests.

func startBroker(t *testing.T) string { return servertest.Run(t).Addr }

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// sharedData is ../shared/data.
func sharedData(t *testing.T) string {
	return filepath.Dir(sigmatest.Data(t))
}

func geoPaths(t *testing.T) (string, string) {
	d := filepath.Join(sharedData(t), "geoip", "test-data")
	return filepath.Join(d, "GeoLite2-City-Test.mmdb"), filepath.Join(d, "GeoLite2-ASN-Test.mmdb")
}

// publishIntel loads a file of a format into an intel topic.
func publishIntel(t *testing.T, cl *kgo.Client, addr, topic, format, name string, data []byte, o intel.LoadOptions, replace bool) {
	t.Helper()
	l, err := intel.Load(format, name, data, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Records) == 0 {
		t.Fatalf("%s: no indicators (skipped: %v)", name, l.Skipped)
	}
	var kvs []KV
	for i := range l.Records {
		kvs = append(kvs, KV{Key: []byte(l.Records[i].Key()), Value: l.Records[i].Marshal()})
	}
	prefix := ""
	if replace {
		prefix = l.Records[0].Set + "|"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := Publish(ctx, cl, []kgo.Opt{kgo.SeedBrokers(addr)}, topic, 1, kvs, prefix); err != nil {
		t.Fatal(err)
	}
}

const stixBundle = `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[
 {"type":"indicator","spec_version":"2.1","id":"indicator--a932fcc6-e032-476c-826f-cb970a5a1ade","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z",
  "name":"C2 server","description":"Command and control of a test campaign","indicator_types":["malicious-activity"],
  "pattern":"[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'c2.evil.example']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"},
 {"type":"indicator","spec_version":"2.1","id":"indicator--0b6b1f3e-8e2c-4a3f-9f0d-1d5a8b3c2e11","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z",
  "name":"Dropper","pattern":"[file:hashes.'SHA-256' = '4bac27393bdd9777ce02453256c5577cd02275510b2227f473d03f533924f877']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"},
 {"type":"indicator","spec_version":"2.1","id":"indicator--9e2c7d53-3f7b-4b5f-8a36-5d0f0b7d5a77","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z",
  "name":"Needs two observables","pattern":"[ipv4-addr:value = '198.51.100.8'] AND [domain-name:value = 'x.example']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}
]}`

// event is an OCSF Network Activity event between two addresses.
func event(src, dst, host string, extra string) []byte {
	return []byte(`{"class_uid":4001,"class_name":"Network Activity","category_uid":4,"activity_id":6,"type_uid":400106,"severity_id":1,"time":1795676400123,` +
		`"metadata":{"product":{"name":"Zeek","vendor_name":"Zeek"},"log_name":"conn","version":"1.1.0"},` +
		`"device":{"hostname":"` + host + `"},"src_endpoint":{"ip":"` + src + `","port":51234},"dst_endpoint":{"ip":"` + dst + `","port":443}` + extra + `}`)
}

type enriched struct {
	Enrichments []struct {
		Name     string                     `json:"name"`
		Value    string                     `json:"value"`
		Type     string                     `json:"type"`
		Provider string                     `json:"provider"`
		Data     map[string]json.RawMessage `json:"data"`
	} `json:"enrichments"`
	Observables []struct {
		Name       string `json:"name"`
		Value      string `json:"value"`
		TypeID     int    `json:"type_id"`
		Reputation *struct {
			ScoreID  int    `json:"score_id"`
			Provider string `json:"provider"`
		} `json:"reputation"`
	} `json:"observables"`
	SrcEndpoint struct {
		Location struct {
			City, Country string
			Coordinates   []float64
		} `json:"location"`
	} `json:"src_endpoint"`
	DstEndpoint struct {
		AS struct {
			Number int    `json:"number"`
			Name   string `json:"name"`
		} `json:"autonomous_system"`
	} `json:"dst_endpoint"`
}

// intelSets are the sets of an enriched event's intel enrichments, by value.
func (e *enriched) intelSets() map[string][]string {
	out := map[string][]string{}
	for _, en := range e.Enrichments {
		if en.Type == "intel" {
			out[en.Value] = append(out[en.Value], en.Provider)
		}
	}
	return out
}

// reader consumes topics from the start and collects records by key.
type reader struct {
	t   *testing.T
	cl  *kgo.Client
	mu  sync.Mutex
	got []*kgo.Record
}

func newReader(t *testing.T, addr string, topics ...string) *reader {
	return &reader{t: t, cl: client(t, addr, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))}
}

// waitKey polls until a record with key k has arrived.
func (r *reader) waitKey(k string, within time.Duration) *kgo.Record {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, rec := range r.got {
			if string(rec.Key) == k {
				return rec
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no record with key %q within %v (have %d records)", k, within, len(r.got))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		f := r.cl.PollFetches(ctx)
		cancel()
		r.got = append(r.got, f.Records()...)
	}
}

// all returns every record with key k read so far.
func (r *reader) all(k string) []*kgo.Record {
	var out []*kgo.Record
	for _, rec := range r.got {
		if string(rec.Key) == k {
			out = append(out, rec)
		}
	}
	return out
}

func produce(t *testing.T, cl *kgo.Client, topic, key string, v []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestEnrichStage runs `vigil enrich` against a broker: an IP in a MISP
// warninglist and an IOC in a STIX bundle give an enrichment and a
// finding; an updated intel record changes the result without a
// restart; GeoIP and ASN are the test databases' answers; asset and
// identity records are joined; a Sigma rule matches the enriched fields.
func TestEnrichStage(t *testing.T) {
	addr := startBroker(t)
	cl := client(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 2, 1, nil, "ocsf.network_activity"); err != nil {
		t.Fatal(err)
	}
	wl := filepath.Join(sharedData(t), "warninglists", "lists")
	dns, err := os.ReadFile(filepath.Join(wl, "public-dns-v4", "list.json"))
	if err != nil {
		t.Fatal(err)
	}
	rfc1918, err := os.ReadFile(filepath.Join(wl, "rfc1918", "list.json"))
	if err != nil {
		t.Fatal(err)
	}
	// A warninglist loaded as an alert set (a finding per hit), another
	// as context (its default: an enrichment only), a STIX bundle.
	publishIntel(t, cl, addr, "intel.warninglists", intel.FormatWarninglist, "public-dns-v4", dns, intel.LoadOptions{Action: intel.ActionAlert}, false)
	publishIntel(t, cl, addr, "intel.warninglists", intel.FormatWarninglist, "rfc1918", rfc1918, intel.LoadOptions{}, false)
	publishIntel(t, cl, addr, "intel.stix", intel.FormatSTIX, "bundle.json", []byte(stixBundle), intel.LoadOptions{Set: "stix-test"}, false)
	inv, err := InventoryRecords([]byte("hostname,owner,criticality,ips\nws-042,alice,high,10.0.0.5;10.0.0.6\n"), "hostname")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(ctx, cl, nil, "assets", 1, inv, ""); err != nil {
		t.Fatal(err)
	}

	city, asn := geoPaths(t)
	st, err := New(Config{Brokers: []string{addr}, Topics: []string{"ocsf.network_activity"}, GeoCity: city, GeoASN: asn,
		SessionTimeout: 6 * time.Second}, servertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	out := newReader(t, addr, "enriched.ocsf.network_activity")
	alerts := newReader(t, addr, "alerts")

	// 10.0.0.5 (RFC 1918, the asset ws-042) to 8.8.8.8 (a public DNS resolver).
	produce(t, cl, "ocsf.network_activity", "e1", event("10.0.0.5", "8.8.8.8", "ws-042", ""))
	// 81.2.69.160 is London in the test City database, 1.128.0.1 AS1221
	// in the test ASN database; 198.51.100.7 and c2.evil.example are STIX
	// indicators.
	produce(t, cl, "ocsf.network_activity", "e2", event("81.2.69.160", "1.128.0.1", "ws-043", `,"query":{"hostname":"www.c2.evil.example"},"unmapped":{"c2":"c2.evil.example","peer":"198.51.100.7"}`))

	var e1, e2 enriched
	r1 := out.waitKey("e1", 30*time.Second)
	if err := json.Unmarshal(r1.Value, &e1); err != nil {
		t.Fatalf("enriched e1 is not JSON: %v\n%s", err, r1.Value)
	}
	sets := e1.intelSets()
	if got := sets["8.8.8.8"]; len(got) != 1 || got[0] != "misp-warninglist:List of known IPv4 public DNS resolvers" {
		t.Errorf("8.8.8.8 intel enrichment: %v\n%s", got, r1.Value)
	}
	if got := sets["10.0.0.5"]; len(got) != 1 || !strings.Contains(got[0], "RFC 1918") {
		t.Errorf("10.0.0.5 intel enrichment: %v\n%s", got, r1.Value)
	}
	if !hasType(&e1, "asset", "10.0.0.5") || !hasType(&e1, "asset", "ws-042") {
		t.Errorf("asset ws-042 not joined by address and hostname:\n%s", r1.Value)
	}
	if h := header(r1, "vigil.origin"); h != "ocsf.network_activity:"+itoa32(r1.Partition)+":0" {
		t.Errorf("origin header %q", h)
	}
	r2 := out.waitKey("e2", 30*time.Second)
	if err := json.Unmarshal(r2.Value, &e2); err != nil {
		t.Fatalf("enriched e2 is not JSON: %v\n%s", err, r2.Value)
	}
	// GeoIP: MaxMind's test City database has 81.2.69.160 in London, GB
	// at 51.5142, -0.0931; its ASN database 1.128.0.0/11 as AS1221
	// Telstra (../shared/data/README.md).
	if loc := e2.SrcEndpoint.Location; loc.City != "London" || loc.Country != "GB" || len(loc.Coordinates) != 2 || loc.Coordinates[0] != -0.0931 || loc.Coordinates[1] != 51.5142 {
		t.Errorf("src_endpoint.location = %+v\n%s", loc, r2.Value)
	}
	if as := e2.DstEndpoint.AS; as.Number != 1221 || as.Name != "Telstra Pty Ltd" {
		t.Errorf("dst_endpoint.autonomous_system = %+v", as)
	}
	sets = e2.intelSets()
	if got := sets["198.51.100.7"]; len(got) != 1 || got[0] != "stix-test" {
		t.Errorf("198.51.100.7 intel: %v\n%s", got, r2.Value)
	}
	if got := sets["c2.evil.example"]; len(got) != 1 {
		t.Errorf("c2.evil.example intel: %v", got)
	}
	if got := sets["www.c2.evil.example"]; len(got) != 0 {
		t.Errorf("an exact STIX domain matched a name under it: %v", got)
	}
	var rep bool
	for _, o := range e2.Observables {
		if o.Value == "198.51.100.7" && o.Reputation != nil && o.Reputation.ScoreID == 10 && o.Reputation.Provider == "stix-test" {
			rep = true
		}
	}
	if !rep {
		t.Errorf("no Malicious reputation for 198.51.100.7 in observables:\n%s", r2.Value)
	}

	// Findings: the alert warninglist's hit and the STIX hits, none for
	// the context list.
	f1 := alerts.waitKey("e1", 30*time.Second)
	var fd struct {
		ClassUID int `json:"class_uid"`
		Info     struct {
			UID   string   `json:"uid"`
			Types []string `json:"types"`
		} `json:"finding_info"`
		Evidences []struct {
			Data json.RawMessage `json:"data"`
		} `json:"evidences"`
	}
	if err := json.Unmarshal(f1.Value, &fd); err != nil {
		t.Fatal(err)
	}
	if fd.ClassUID != 2004 || !strings.HasPrefix(fd.Info.UID, "intel:misp-warninglist:List of known IPv4 public DNS resolvers:8.8.8.8:ocsf.network_activity:") {
		t.Errorf("warninglist finding: %s", f1.Value)
	}
	if len(fd.Evidences) != 1 || !strings.Contains(string(fd.Evidences[0].Data), `"enrichments"`) {
		t.Errorf("finding does not carry the enriched event")
	}
	alerts.waitKey("e2", 30*time.Second)

	// Live update: a new STIX indicator, and the public DNS list without
	// 8.8.8.8 (--replace tombstones it), change the result without a
	// restart.
	update := strings.Replace(stixBundle, "198.51.100.7", "198.51.100.99", 1)
	publishIntel(t, cl, addr, "intel.stix", intel.FormatSTIX, "bundle.json", []byte(update), intel.LoadOptions{Set: "stix-test"}, true)
	publishIntel(t, cl, addr, "intel.warninglists", intel.FormatWarninglist, "public-dns-v4",
		[]byte(strings.Replace(string(dns), `"8.8.8.8",`, "", 1)), intel.LoadOptions{Action: intel.ActionAlert}, true)
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		key := "e3-" + itoa32(int32(i))
		produce(t, cl, "ocsf.network_activity", key, event("198.51.100.99", "198.51.100.7", "ws-044", `,"unmapped":{"dns":"8.8.8.8"}`))
		var e3 enriched
		if err := json.Unmarshal(out.waitKey(key, 30*time.Second).Value, &e3); err != nil {
			t.Fatal(err)
		}
		s := e3.intelSets()
		if len(s["198.51.100.99"]) == 1 && len(s["198.51.100.7"]) == 0 && len(s["8.8.8.8"]) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("intel update not applied: %v", s)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A Sigma rule over the enriched fields, through the default mapping.
	rules, problems := sigma.ParseRules([]byte(`title: Traffic from Great Britain to a STIX C2
id: 7d0b3f64-5c8e-4c7a-9d62-2f3f8a0e9b11
logsource: {product: zeek, service: conn}
detection:
  geo: {SourceCountry: GB, DestinationAsn: 1221}
  ioc: {intel.set: stix-test, intel.indicator_type: ip}
  condition: geo and ioc
`))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	eng, lp := sigma.NewEngine(rules, sigma.DefaultConfig())
	if len(lp) > 0 {
		t.Fatal(lp)
	}
	m := eng.NewMatcher()
	if got, err := m.Match(r2.Value); err != nil || len(got) != 1 {
		t.Errorf("rule on enriched fields: %d matches, %v", len(got), err)
	}
	if got, _ := m.Match(r1.Value); len(got) != 0 {
		t.Errorf("rule matched e1")
	}
}

func hasType(e *enriched, typ, value string) bool {
	for _, en := range e.Enrichments {
		if en.Type == typ && en.Value == value {
			return true
		}
	}
	return false
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func itoa32(n int32) string { return strconv.Itoa(int(n)) }
