package exportconfig

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/export"
)

const example = `
brokers: [127.0.0.1:9092]
dead_letter_topic: export.dead
sinks:
  - name: search
    type: elasticsearch
    topic_regex: '^ocsf\.'
    instance_id: export-1
    batch: {records: 1000, bytes: 4194304}
    retry: {initial: 100ms, max: 1m}
    elasticsearch:
      url: https://es.example:9200
      index: 'vigil-{class}-{yyyy.MM.dd}'
      username: vigil
      password: secret
      tls: {ca: /etc/vigil/ca.pem}
  - name: splunk
    type: splunk_hec
    topics: [alerts, ocsf.authentication]
    splunk_hec: {url: https://splunk:8088, token: abc, ack: true, ack_timeout: 1m}
  - name: slack
    type: webhook
    topics: [alerts]
    webhook: {url: https://hooks.slack.com/services/T/B/X, format: slack, rate: 1}
`

func TestParse(t *testing.T) {
	f, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sinks) != 3 || f.Sinks[0].Retry.Max != time.Minute || f.Sinks[1].SplunkHEC.AckTimeout != time.Minute || f.Sinks[0].Batch.Records != 1000 {
		t.Fatalf("parsed %+v", f)
	}
	for _, bad := range []struct{ yaml, want string }{
		{strings.Replace(example, "index:", "indx:", 1), "field indx not found"},
		{strings.Replace(example, "type: webhook", "type: kafka", 1), "want elasticsearch"},
		{strings.Replace(example, "name: slack", "name: search", 1), "two sinks"},
		{strings.Replace(example, "type: splunk_hec", "type: webhook", 1), "needs its webhook: section"},
		{"sinks: []", "no sinks"},
	} {
		if _, err := Parse([]byte(bad.yaml)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("want an error with %q, got %v", bad.want, err)
		}
	}
	// The CA file does not exist: building the jobs says which sink.
	_, err = f.Jobs(nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "sink search") {
		t.Errorf("jobs: %v", err)
	}
}

// TestMaxInFlight: max_in_flight reaches the job; unset it is the
// default, one for a webhook; out of range it is an error.
func TestMaxInFlight(t *testing.T) {
	const yaml = `
brokers: [127.0.0.1:9092]
sinks:
  - name: search
    type: elasticsearch
    topics: [a]%s
    elasticsearch: {url: http://127.0.0.1:9200}
  - name: hook
    type: webhook
    topics: [a]%s
    webhook: {url: http://127.0.0.1:8080}
`
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		es, hook         string
		wantES, wantHook int
		err              string
	}{
		{"", "", export.DefaultMaxInFlight, 1, ""},
		{"\n    max_in_flight: 8", "\n    max_in_flight: 2", 8, 2, ""},
		{"\n    max_in_flight: -1", "", 0, 0, "max_in_flight -1: want 1 to 64"},
		{"", "\n    max_in_flight: 65", 0, 0, "max_in_flight 65: want 1 to 64"},
	} {
		f, err := Parse([]byte(fmt.Sprintf(yaml, c.es, c.hook)))
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := f.Jobs(nil, nil, nil, log)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q %q: %v, want an error with %q", c.es, c.hook, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if es, hook := jobs[0].Config().MaxInFlight, jobs[1].Config().MaxInFlight; es != c.wantES || hook != c.wantHook {
			t.Errorf("%q %q: max in flight %d and %d, want %d and %d", c.es, c.hook, es, hook, c.wantES, c.wantHook)
		}
		for _, j := range jobs {
			j.Close()
		}
	}
}
