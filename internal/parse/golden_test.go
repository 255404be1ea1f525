package parse

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/ocsf"
)

var update = flag.Bool("update", false, "rewrite testdata/*/*.golden.json from the parsers' output")

// goldenDirs maps each testdata directory to the source its inputs are
// fed as (the same path an HTTP body of that source takes).
var goldenDirs = map[string]string{
	"linuxauth":  SourceSyslog,
	"auditd":     SourceAuditd,
	"winlog":     SourceWinlog,
	"cloudtrail": SourceCloudTrail,
	"zeek":       SourceZeek,
	"squid":      SourceSquid,
	"access":     SourceAccess,
	"okta":       SourceOkta,
	"github":     SourceGitHub,
	"azure":      SourceAzure,
	"gcp":        SourceGCP,
	"m365":       SourceM365,
	"generic":    SourceAuto,
}

type goldenEntry struct {
	Host       string     `json:"host,omitempty"`
	Event      ocsf.Event `json:"event,omitempty"`
	DeadLetter string     `json:"deadletter,omitempty"`
}

// TestGolden runs every testdata/<parser>/*.input through its parser and
// compares with *.golden.json; every event must also carry its OCSF
// class's required attributes, and the host that keys it.
func TestGolden(t *testing.T) {
	p := &Parsers{Now: func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }}
	for dir, source := range goldenDirs {
		inputs, err := filepath.Glob(filepath.Join("testdata", dir, "*.input"))
		if err != nil {
			t.Fatal(err)
		}
		if len(inputs) == 0 {
			t.Errorf("testdata/%s has no .input files", dir)
		}
		for _, in := range inputs {
			t.Run(dir+"/"+strings.TrimSuffix(filepath.Base(in), ".input"), func(t *testing.T) {
				body, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				var got []goldenEntry
				events := 0
				for _, r := range p.Body(source, body, "collector-1") {
					if r.Err != nil {
						got = append(got, goldenEntry{DeadLetter: r.Err.Error()})
						continue
					}
					if err := ocsf.Validate(r.Event); err != nil {
						t.Errorf("event fails OCSF validation: %v", err)
					}
					if r.Host == "" {
						t.Errorf("event without a host key: %v", r.Event["raw_data"])
					}
					events++
					got = append(got, goldenEntry{Host: r.Host, Event: r.Event})
				}
				// A broken*.input holds a body that cannot be decoded: it is
				// dead-lettered whole. Every other input yields events.
				if broken := strings.HasPrefix(filepath.Base(in), "broken"); broken && events > 0 {
					t.Errorf("%d events parsed from the undecodable %s", events, in)
				} else if !broken && events == 0 {
					t.Errorf("no events parsed from %s", in)
				}
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false) // as ocsf.Event.Marshal: raw lines stay readable
				enc.SetIndent("", "  ")
				if err := enc.Encode(got); err != nil {
					t.Fatal(err)
				}
				out := buf.Bytes()
				golden := strings.TrimSuffix(in, ".input") + ".golden.json"
				if *update {
					if err := os.WriteFile(golden, out, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(out, want) {
					t.Errorf("%s differs from the parser's output (go test -update rewrites it):\n%s", golden, out)
				}
				// The golden file itself must hold valid OCSF, whatever
				// produced it.
				var back []struct {
					Event ocsf.Event `json:"event"`
				}
				if err := json.Unmarshal(want, &back); err != nil {
					t.Fatal(err)
				}
				for _, b := range back {
					if b.Event != nil {
						if err := ocsf.Validate(b.Event); err != nil {
							t.Errorf("golden event fails OCSF validation: %v", err)
						}
					}
				}
			})
		}
	}
}
