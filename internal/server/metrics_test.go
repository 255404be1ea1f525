package server

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// metricValue returns the value of the first sample matching the
// Prometheus text line prefix (name and labels), or -1.
func metricValue(body, prefix string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + `\S* (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestAdminEndpoints(t *testing.T) {
	ts := startServer(t, t.TempDir(), func(c *config.Broker) { c.UploadInterval = 50 * time.Millisecond })
	base := "http://" + ts.srv.AdminAddr()
	if code, body := httpGet(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("/debug/pprof/goroutine: %d %.200s", code, body)
	}

	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 2, nil, "metered")
	cl := ts.client(t, kgo.DefaultProduceTopic("metered"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 100 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// A group that committed offset 10 on partition 0 lags by the rest.
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "metered", Partition: 0, At: 10, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, "lagging", commit); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	ends, err := adm.ListEndOffsets(ctx, "metered")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup("metered", 0)
	waitFor(t, "an upload", func() bool { return ts.srv.UploadBacklog() == 0 })

	_, body := httpGet(t, base+"/metrics")
	for _, c := range []struct {
		prefix string
		min    float64
	}{
		{`vigil_requests_total{api="Produce"}`, 100},
		{`vigil_request_duration_seconds_count{api="Produce"}`, 100},
		{`vigil_requests_total{api="OffsetCommit"}`, 1},
		{`vigil_wal_fsync_duration_seconds_count`, 1},
		{`vigil_wal_group_commit_bytes_count`, 1},
		{`vigil_segment_uploads_total`, 1},
		{`vigil_upload_backlog_bytes`, 0},
		{`go_goroutines`, 1},
	} {
		if v := metricValue(body, c.prefix); v < c.min {
			t.Errorf("%s = %v, want >= %v", c.prefix, v, c.min)
		}
	}
	lag := metricValue(body, `vigil_group_lag{group="lagging",partition="0",topic="metered"}`)
	if want := float64(end.Offset - 10); lag != want {
		t.Errorf("vigil_group_lag of lagging/metered/0 = %v, want %v (end %d - committed 10)\n%s", lag, want, end.Offset, body)
	}
	if stable := metricValue(body, `vigil_group_lag_stable{group="lagging",partition="0",topic="metered"}`); stable != lag {
		t.Errorf("vigil_group_lag_stable = %v without transactions, want the lag %v", stable, lag)
	}
	// An open transaction's records count in the lag, not in the stable
	// lag (read_committed consumers cannot read them yet).
	txp := ts.client(t, kgo.TransactionalID("metered-txn"), kgo.DefaultProduceTopic("metered"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := txp.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := txp.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	_, body = httpGet(t, base+"/metrics")
	lag = metricValue(body, `vigil_group_lag{group="lagging",partition="0",topic="metered"}`)
	stable := metricValue(body, `vigil_group_lag_stable{group="lagging",partition="0",topic="metered"}`)
	if lag != float64(end.Offset+5-10) || stable != float64(end.Offset-10) {
		t.Errorf("with 5 records in an open transaction: lag %v, stable lag %v; want %d and %d", lag, stable, end.Offset+5-10, end.Offset-10)
	}

	ts.close()
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("admin listener still answers after Close")
	}
}
