package hec_test

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/export"
	"github.com/vigilhq/vigil/internal/export/exporttest"
	"github.com/vigilhq/vigil/internal/export/hec"
)

func testLog() *slog.Logger {
	if os.Getenv("VIGIL_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newJob(t *testing.T, addr, name, topic string, c hec.Config) *export.Job {
	t.Helper()
	sink, err := hec.New(c)
	if err != nil {
		t.Fatal(err)
	}
	j, err := export.NewJob(export.JobConfig{Name: name, Brokers: []string{addr}, Topics: []string{topic}, MaxBatchRecords: 25,
		RetryInitial: 50 * time.Millisecond, RetryMax: 2 * time.Second, SessionTimeout: 6 * time.Second}, sink, nil, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// TestAckHonoured holds the indexer's acknowledgements: the events reach
// the receiver (VictoriaLogs, through a proxy that speaks Splunk's ack
// protocol) but no offset is committed until the acks are released. The
// job's four lanes each send a first batch and wait for its ack, all at
// once; none sends a second before the first is acknowledged.
func TestAckHonoured(t *testing.T) {
	v := exporttest.StartVictoriaLogs(t)
	addr := exporttest.StartBroker(t)
	const n = 150 // four lanes of 37 or 38 records: two batches each
	exporttest.Produce(t, addr, "ocsf.hec", 1, 0, n)
	p := &exporttest.HECProxy{Upstream: v.URL(), Token: "0c3b8b2e-hec-token", Ack: true}
	p.HoldAcks.Store(true)
	p.Start(t)
	j := newJob(t, addr, "splunk", "ocsf.hec", hec.Config{URL: p.URL(), Token: p.Token, Ack: true, AckPoll: 50 * time.Millisecond})
	r := exporttest.Run(t, j.Run)
	exporttest.Wait(t, 30*time.Second, "the first batch at the receiver", func() bool { return len(p.Sends()) > 0 })
	time.Sleep(time.Second)
	if c, _ := exporttest.Committed(t, addr, "vigil-export-splunk", "ocsf.hec"); c != 0 {
		t.Fatalf("committed %d records while the indexer had acknowledged none", c)
	}
	if s := len(p.Sends()); s > export.DefaultMaxInFlight*25 || s <= 25 {
		t.Fatalf("%d events sent before a batch was acknowledged; want a batch of 25 from each of %d lanes", s, export.DefaultMaxInFlight)
	}
	if p.Polls() < 5 {
		t.Fatalf("%d ack polls in a second at a 50ms interval", p.Polls())
	}
	p.HoldAcks.Store(false)
	exporttest.Wait(t, 30*time.Second, "commit", func() bool {
		c, e := exporttest.Committed(t, addr, "vigil-export-splunk", "ocsf.hec")
		return c == e
	})
	r.Stop()
	sends := p.Sends()
	if len(sends) != n {
		t.Fatalf("%d distinct events sent, want %d", len(sends), n)
	}
	// The events as Splunk would index them: sourcetype per class, the
	// record's id as an indexed field, the event's time.
	want := map[string]string{}
	for i := range n {
		want[export.RecordID("ocsf.hec", 0, int64(i))] = ""
	}
	for _, ev := range p.Events() {
		st, _ := ev["sourcetype"].(string)
		id := ev["fields"].(map[string]any)["vigil_id"].(string)
		body := ev["event"].(map[string]any)
		cls := map[float64]string{3002: "ocsf:authentication", 1007: "ocsf:process_activity", 2004: "ocsf:detection_finding"}[body["class_uid"].(float64)]
		if st != cls || ev["source"] != "vigil:ocsf.hec" {
			t.Errorf("event %s: sourcetype %q source %v; want %q", id, st, ev["source"], cls)
		}
		if tm, _ := ev["time"].(float64); int64(tm*1000+0.5) != int64(body["time"].(float64)) {
			t.Errorf("event %s: time %v, event time %v", id, ev["time"], body["time"])
		}
		delete(want, id)
	}
	if len(want) > 0 {
		t.Errorf("%d records never sent", len(want))
	}
	rows, err := v.WaitRows(`sourcetype:"ocsf:authentication"`, n/3, 20*time.Second)
	if err != nil || len(rows) != n/3 {
		t.Errorf("VictoriaLogs holds %d authentication events (%v), want %d", len(rows), err, n/3)
	}
}

// TestBusyAndBadToken: a 503 (server busy) is retried until it passes; a
// wrong token is retried too, never dead-lettered.
func TestBusyAndBadToken(t *testing.T) {
	v := exporttest.StartVictoriaLogs(t)
	addr := exporttest.StartBroker(t)
	const n = 30
	exporttest.Produce(t, addr, "ocsf.busy", 1, 0, n)
	p := &exporttest.HECProxy{Upstream: v.URL(), Token: "right-token-0123456789",
		RequestFault: func(k int) (int, string) {
			if k <= 3 {
				return 503, "1"
			}
			return 0, ""
		}}
	p.Start(t)
	bad := newJob(t, addr, "busy", "ocsf.busy", hec.Config{URL: p.URL(), Token: "wrong-token"})
	r := exporttest.Run(t, bad.Run)
	time.Sleep(1500 * time.Millisecond)
	r.Stop()
	if c, _ := exporttest.Committed(t, addr, "vigil-export-busy", "ocsf.busy"); c != 0 || bad.Stats().DeadLettered != 0 || len(p.Sends()) != 0 {
		t.Fatalf("with a wrong token: committed %d, dead-lettered %d, sent %d", c, bad.Stats().DeadLettered, len(p.Sends()))
	}
	good := newJob(t, addr, "busy", "ocsf.busy", hec.Config{URL: p.URL(), Token: p.Token})
	start := time.Now()
	r = exporttest.Run(t, good.Run)
	exporttest.Wait(t, 30*time.Second, "commit", func() bool {
		c, e := exporttest.Committed(t, addr, "vigil-export-busy", "ocsf.busy")
		return c == e
	})
	r.Stop()
	// 30 records are two lanes of 15: the first two 503s answer requests
	// sent together and are waited out together, the third comes a
	// second later and is waited out too.
	if el := time.Since(start); el < 1900*time.Millisecond {
		t.Errorf("three 503s with Retry-After: 1 passed in %v", el)
	}
	if st := good.Stats(); st.Delivered != n || st.Throttled < 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestOtelCollector delivers to a Splunk HEC implementation Vigil did not
// write: the OpenTelemetry Collector's splunkhecreceiver, with its token
// check and its indexer acknowledgement (the ack extension). Every record
// arrives once, with its sourcetype and id, the offsets are committed
// only as far as the collector acknowledged, and a wrong token is refused
// by the collector and retried, never dead-lettered.
func TestOtelCollector(t *testing.T) {
	const token = "4f1c0a5e-otel-hec-token"
	o := exporttest.StartOtelHEC(t, token, true)
	addr := exporttest.StartBroker(t)
	const n = 150
	exporttest.Produce(t, addr, "ocsf.otel", 2, 0, n)

	bad := newJob(t, addr, "otel", "ocsf.otel", hec.Config{URL: o.URL(), Token: "not-" + token, Ack: true, AckPoll: 50 * time.Millisecond})
	r := exporttest.Run(t, bad.Run)
	exporttest.Wait(t, 30*time.Second, "a refused batch", func() bool { return bad.Stats().Retried > 0 })
	r.Stop()
	evs, err := o.Events()
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := exporttest.Committed(t, addr, "vigil-export-otel", "ocsf.otel"); c != 0 || bad.Stats().DeadLettered != 0 || len(evs) != 0 {
		t.Fatalf("with a wrong token: committed %d, dead-lettered %d, received %d", c, bad.Stats().DeadLettered, len(evs))
	}

	good := newJob(t, addr, "otel", "ocsf.otel", hec.Config{URL: o.URL(), Token: token, Ack: true, AckPoll: 50 * time.Millisecond})
	r = exporttest.Run(t, good.Run)
	exporttest.Wait(t, 60*time.Second, "commit", func() bool {
		c, e := exporttest.Committed(t, addr, "vigil-export-otel", "ocsf.otel")
		return c == e
	})
	r.Stop()
	if st := good.Stats(); st.Delivered != n || st.DeadLettered != 0 {
		t.Errorf("stats %+v, want %d delivered", st, n)
	}
	var got []hecEvent
	exporttest.Wait(t, 10*time.Second, "every event written out", func() bool {
		evs, err := o.Events()
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, ev := range evs {
			got = append(got, hecEvent(ev))
		}
		return len(got) >= n
	})
	seen := map[string]int{}
	classes := map[float64]string{3002: "ocsf:authentication", 1007: "ocsf:process_activity", 2004: "ocsf:detection_finding"}
	for _, ev := range got {
		seen[ev.ID]++
		cls, _ := ev.Body["class_uid"].(float64)
		if ev.Sourcetype != classes[cls] || ev.Source != "vigil:ocsf.otel" {
			t.Errorf("event %s: sourcetype %q source %q, want %q", ev.ID, ev.Sourcetype, ev.Source, classes[cls])
		}
	}
	for _, rec := range exporttest.ReadTopic(t, addr, "ocsf.otel") {
		id := export.RecordID(rec.Topic, rec.Partition, rec.Offset)
		if seen[id] != 1 {
			t.Errorf("record %s received %d times, want once", id, seen[id])
		}
		delete(seen, id)
	}
	if len(seen) > 0 {
		t.Errorf("received events of no record: %v", seen)
	}
}

type hecEvent = exporttest.HECEvent
