package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/server/servertest"
)

func startTestBroker(t *testing.T) string { return servertest.Run(t).Addr }

// TestAlertsList: `vigil alerts list` shows one row per finding with its
// time, severity, rule, host and user, and a suppressed finding's row
// the count of its update.
func TestAlertsList(t *testing.T) {
	addr := startTestBroker(t)
	brokers := "--brokers=" + addr
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ev := `{"device":{"hostname":"ws-042"},"user":{"name":"alice"},"class_uid":3002}`
	find := func(uid, title, sev string, sevID, activity, count int) []byte {
		s := `{"class_uid":2004,"activity_id":` + itoa(activity) + `,"time":1795676400123,"severity":"` + sev + `","severity_id":` + itoa(sevID) +
			`,"finding_info":{"uid":"` + uid + `","title":"` + title + `","types":["Sigma"]}`
		if activity == 1 {
			s += `,"evidences":[{"data":` + ev + `}]`
		} else {
			s += `,"count":` + itoa(count) + `,"start_time":1795676400123`
		}
		return []byte(s + `}`)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, v := range [][]byte{find("r1:t:0:1", "Brute force", "High", 4, 1, 0), find("r2:t:0:2", "Noise", "Low", 2, 1, 0),
		find("r1:t:0:1", "Brute force", "High", 4, 2, 5), []byte(`{"not":"a finding"}`)} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "alerts", Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"alerts", "list", brokers, "--utc"}, &out, &errOut); code != 0 {
		t.Fatalf("alerts list: exit %d\n%s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("alerts list:\n%s", out.String())
	}
	if f := strings.Fields(lines[1]); len(f) < 8 || f[2] != "High" || f[3] != "Brute" || f[5] != "ws-042" || f[6] != "alice" || f[7] != "5" {
		t.Errorf("row of the suppressed finding: %q", lines[1])
	}
	out.Reset()
	if code := run([]string{"alerts", "list", brokers, "--severity", "high"}, &out, &errOut); code != 0 || strings.Contains(out.String(), "Noise") {
		t.Errorf("--severity high: exit %d\n%s", code, out.String())
	}
	if code := run([]string{"alerts", "nope"}, &out, &errOut); code != 2 {
		t.Errorf("alerts nope: exit %d", code)
	}
}

// TestEnrichLoadAndHuntCLI: `vigil enrich load` puts a MISP warninglist
// into a compacted intel topic; `vigil hunt` refuses a range it cannot
// read and a missing --from.
func TestEnrichLoadAndHuntCLI(t *testing.T) {
	addr := startTestBroker(t)
	brokers := "--brokers=" + addr
	list := filepath.Join("..", "..", "..", "shared", "data", "warninglists", "lists", "public-dns-v4", "list.json")
	if _, err := os.Stat(list); err != nil {
		t.Skipf("shared data: %v", err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"enrich", "load", brokers, "--format", "misp-warninglist", list}, &out, &errOut); code != 0 {
		t.Fatalf("enrich load: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "intel.misp-warninglist (created, compacted):") {
		t.Errorf("enrich load: %s", out.String())
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"hunt", brokers, "--rules", "."}, 2, "--from is required"},
		{[]string{"hunt", brokers, "--rules", ".", "--from", "yesterday"}, 2, "not an RFC 3339 time"},
		{[]string{"hunt", brokers, "--rules", ".", "--from", "2026-07-02T00:00:00Z", "--to", "2026-07-01T00:00:00Z"}, 2, "is not before"},
		{[]string{"enrich", "load", brokers, list}, 2, "--format"},
		{[]string{"enrich", "load", brokers, "--format", "stix", "--action", "block", list}, 2, "--action"},
	} {
		errOut.Reset()
		if code := run(tc.args, &out, &errOut); code != tc.code || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("vigil %s: exit %d, want %d with %q\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, errOut.String())
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
