package exportconfig

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
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
