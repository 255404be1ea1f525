package detect

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/server/servertest"
)

// TestSuppression: a SigmaHQ rule with a suppression entry (1 minute,
// grouped by Computer) over a burst of five identical events gives one
// finding at once and, when a later event closes the window, one update
// of the same uid with count 5; the event after the window is a new
// finding with its own uid, and no further update (it stands alone).
func TestSuppression(t *testing.T) {
	data, ss := loadSamples(t)
	s := ss[0] // driverquery
	addr := startBroker(t)
	createTopics(t, addr, 1, "winlog", "alerts")
	dir := t.TempDir()
	copyRule(t, data, s, dir)
	cfgPath := filepath.Join(t.TempDir(), "detect.yml")
	if err := os.WriteFile(cfgPath, []byte("suppression:\n  - rules: ["+s.id+"]\n    window: 1m\n    group_by: [Computer]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cl := client(t, addr)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, &kgo.Record{Topic: "winlog", Key: []byte("ws-1"), Value: s.event, Timestamp: t0.Add(time.Duration(i) * time.Second)})
	}
	recs = append(recs, &kgo.Record{Topic: "winlog", Key: []byte("ws-1"), Value: s.event, Timestamp: t0.Add(2 * time.Minute)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Brokers: []string{addr}, Topics: []string{"winlog"}, RuleDirs: []string{dir}, ConfigPath: cfgPath,
		SessionTimeout: 6 * time.Second, WatchInterval: -1}, servertest.LoggerAt(t, slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	runDetector(t, d)
	got := newAlertReader(t, addr, "alerts").waitFor(3, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	if len(got) != 3 {
		t.Fatalf("%d alerts, want 3 (first, update, after the window)", len(got))
	}
	first, update, after := decodeAlert(t, got[0]), decodeAlert(t, got[1]), decodeAlert(t, got[2])
	if num(first, "activity_id") != 1 || str(first, "finding_info.uid") != s.id+":winlog:0:0" {
		t.Errorf("first: activity %d uid %q", num(first, "activity_id"), str(first, "finding_info.uid"))
	}
	if str(first, "unmapped.suppression.window") != "1m0s" || str(first, "unmapped.suppression.group_by.Computer") == "" {
		t.Errorf("first finding does not say it is suppressed: %s", got[0].Value)
	}
	if num(update, "activity_id") != 2 || num(update, "type_uid") != 200402 || num(update, "count") != 5 ||
		str(update, "finding_info.uid") != s.id+":winlog:0:0" {
		t.Errorf("update: activity %d count %d uid %q\n%s", num(update, "activity_id"), num(update, "count"), str(update, "finding_info.uid"), got[1].Value)
	}
	if int64(num(update, "start_time")) != t0.UnixMilli() || int64(num(update, "end_time")) != t0.Add(4*time.Second).UnixMilli() {
		t.Errorf("update window %d..%d, want %d..%d", num(update, "start_time"), num(update, "end_time"), t0.UnixMilli(), t0.Add(4*time.Second).UnixMilli())
	}
	if _, ok := update.Get("evidences"); ok {
		t.Errorf("update carries the evidence again")
	}
	if num(after, "activity_id") != 1 || str(after, "finding_info.uid") != s.id+":winlog:0:5" {
		t.Errorf("after the window: activity %d uid %q", num(after, "activity_id"), str(after, "finding_info.uid"))
	}
	if st := d.Stats(); st.Suppressed != 4 {
		t.Errorf("suppressed %d matches, want 4", st.Suppressed)
	}
}
