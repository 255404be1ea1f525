package hunt

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/detect"
	"github.com/vigilhq/vigil/internal/server/servertest"
	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// startBroker runs a broker in-process on a free port; its data reaches
// segment objects quickly, so the hunt reads them back as a replay does.
func startBroker(t *testing.T, adjust ...func(*config.Broker)) string {
	t.Helper()
	return servertest.Run(t, append([]func(*config.Broker){func(c *config.Broker) {
		c.UploadInterval = 100 * time.Millisecond
		c.TailCacheBytes = 1 // uploaded batches leave memory: reads come from objects
	}}, adjust...)...).Addr
}

// regressionEvents reads every SigmaHQ regression event of a rule folder.
func regressionEvents(t *testing.T, data, folder string) [][]byte {
	var out [][]byte
	err := filepath.WalkDir(filepath.Join(data, "regression_data", folder), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return nil // some files are documents of their own kind
		}
		out = append(out, b.Bytes())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type finding struct {
	Info struct {
		UID string `json:"uid"`
	} `json:"finding_info"`
	ActivityID int `json:"activity_id"`
}

func uidOf(t *testing.T, v []byte) string {
	var f finding
	if err := json.Unmarshal(v, &f); err != nil || f.Info.UID == "" {
		t.Fatalf("not a finding: %v: %s", err, v)
	}
	return f.Info.UID
}

// TestHuntMatchesLive runs SigmaHQ's Windows process-creation rules over
// their regression events twice: live, by the streaming detector as the
// records arrive, and afterwards by a hunt over a time range that ends
// before a second burst of the same events. The hunt's findings are the
// live detector's findings of the records in the range, byte for byte
// (so with the same uids), and none of the records past --to.
func TestHuntMatchesLive(t *testing.T) {
	data := sigmatest.Data(t)
	events := regressionEvents(t, data, "rules/windows/process_creation")
	if testing.Short() {
		events = events[:40]
	}
	if len(events) < 20 {
		t.Fatalf("only %d regression events", len(events))
	}
	rules := filepath.Join(data, "rules", "windows", "process_creation")
	cfgPath := filepath.Join(t.TempDir(), "detect.yml")
	// Suppression too: the same config folds the same findings in both.
	if err := os.WriteFile(cfgPath, []byte("suppression:\n  - rules: ['*']\n    window: 10m\n    group_by: [Computer, Image]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 3, 1, nil, "winlog", "alerts"); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	produce := func(at time.Time) {
		var recs []*kgo.Record
		for i, ev := range events {
			// Keyed by host, as ingest keys: one host's events stay in
			// one partition, in order, which is what suppression and
			// correlation windows follow.
			var host struct {
				Event struct{ System struct{ Computer string } }
			}
			json.Unmarshal(ev, &host)
			recs = append(recs, &kgo.Record{Topic: "winlog", Key: []byte(host.Event.System.Computer), Value: ev, Timestamp: at.Add(time.Duration(i) * time.Millisecond)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(base)
	produce(base.Add(30 * time.Minute)) // past --to

	d, err := detect.New(detect.Config{Brokers: []string{addr}, Topics: []string{"winlog"}, RuleDirs: []string{rules}, ConfigPath: cfgPath,
		SessionTimeout: 6 * time.Second, WatchInterval: -1}, servertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	for d.Stats().Records < int64(2*len(events)) {
		if ctx.Err() != nil {
			t.Fatalf("live detector evaluated %d of %d records", d.Stats().Records, 2*len(events))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the last batch's alerts are acknowledged
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The live findings, by uid, of records in the range (their
	// evidence's record time is before the cut).
	live := map[string][]byte{}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "alerts")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("alerts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var read int64
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	cut := base.Add(15 * time.Minute)
	for read < total {
		f := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d alerts", read, total)
		}
		f.EachRecord(func(r *kgo.Record) {
			read++
			var at struct {
				Time int64 `json:"time"`
			}
			json.Unmarshal(r.Value, &at)
			if time.UnixMilli(at.Time).Before(cut) {
				live[uidOf(t, r.Value)+"#"+string(r.Value[:20])] = r.Value
			}
		})
	}
	if len(live) < 10 {
		t.Fatalf("live detection found only %d findings in the range", len(live))
	}

	var out, progress bytes.Buffer
	st, err := Run(ctx, Config{Brokers: []string{addr}, Topics: []string{"winlog"}, From: base.Add(-time.Second), To: cut,
		RuleDirs: []string{rules}, ConfigPath: cfgPath, Output: &out, Progress: &progress, ProgressEvery: time.Millisecond}, servertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hunt: %+v", st)
	if st.Records != int64(len(events)) {
		t.Errorf("hunt evaluated %d records, want the %d in the range", st.Records, len(events))
	}
	hunted := map[string][]byte{}
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		hunted[uidOf(t, line)+"#"+string(line[:20])] = line
	}
	if len(hunted) != len(live) {
		t.Errorf("hunt: %d findings, live: %d in the range", len(hunted), len(live))
	}
	var diff []string
	for k, v := range live {
		if h, ok := hunted[k]; !ok {
			diff = append(diff, "missing from the hunt: "+k)
		} else if !bytes.Equal(h, v) {
			diff = append(diff, "differs: "+k+"\n live "+string(v)+"\n hunt "+string(h))
		}
	}
	for k := range hunted {
		if _, ok := live[k]; !ok {
			diff = append(diff, "only in the hunt: "+k)
		}
	}
	sort.Strings(diff)
	for i, d := range diff {
		if i == 5 {
			t.Errorf("... %d more", len(diff)-5)
			break
		}
		t.Error(d)
	}
	if p := progress.String(); !strings.Contains(p, "% of the range") || !strings.Contains(p, "ETA") || !strings.Contains(p, "hunt: done:") {
		t.Errorf("progress lines:\n%s", p)
	}
}
