// Package exportconfig reads the YAML file of `vigil export --config`:
// the sinks of one process, each turned into an export.Job with its sink
// built. Keys are checked: a misspelt one is an error, not a default.
//
//	brokers: [127.0.0.1:9092]            # optional; --brokers wins
//	dead_letter_topic: export.deadletter # default of every sink
//	sinks:
//	  - name: search                     # unique; names the group, metrics, dead letters
//	    type: elasticsearch              # elasticsearch | splunk_hec | webhook
//	    topics: [ocsf.authentication]    # or topic_regex: '^ocsf\.'
//	    elasticsearch: {url: https://es:9200, index: 'vigil-{class}-{yyyy.MM.dd}'}
package exportconfig

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/internal/export"
	"github.com/vigilhq/vigil/internal/export/elastic"
	"github.com/vigilhq/vigil/internal/export/hec"
	"github.com/vigilhq/vigil/internal/export/webhook"
)

// Sink types.
const (
	TypeElasticsearch = "elasticsearch"
	TypeSplunkHEC     = "splunk_hec"
	TypeWebhook       = "webhook"
)

// File is the configuration file.
type File struct {
	Brokers         []string `yaml:"brokers"`
	DeadLetterTopic string   `yaml:"dead_letter_topic"`
	Sinks           []Sink   `yaml:"sinks"`
}

// Sink is one entry of sinks.
type Sink struct {
	Name            string        `yaml:"name"`
	Type            string        `yaml:"type"`
	Group           string        `yaml:"group"`
	InstanceID      string        `yaml:"instance_id"`
	Topics          []string      `yaml:"topics"`
	TopicRegex      string        `yaml:"topic_regex"`
	Start           string        `yaml:"start"`
	DeadLetterTopic string        `yaml:"dead_letter_topic"`
	SessionTimeout  time.Duration `yaml:"session_timeout"`
	MaxInFlight     int           `yaml:"max_in_flight"`
	Batch           struct {
		Records     int `yaml:"records"`
		Bytes       int `yaml:"bytes"`
		PollRecords int `yaml:"poll_records"`
	} `yaml:"batch"`
	Retry struct {
		Initial     time.Duration `yaml:"initial"`
		Max         time.Duration `yaml:"max"`
		MaxAttempts int           `yaml:"max_attempts"`
	} `yaml:"retry"`
	Elasticsearch *elastic.Config `yaml:"elasticsearch"`
	SplunkHEC     *hec.Config     `yaml:"splunk_hec"`
	Webhook       *webhook.Config `yaml:"webhook"`
}

// Load reads and checks a file.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}

// Parse reads and checks a configuration.
func Parse(raw []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("export config: %w", err)
	}
	if len(f.Sinks) == 0 {
		return nil, errors.New("export config: no sinks")
	}
	names := map[string]bool{}
	for i := range f.Sinks {
		s := &f.Sinks[i]
		if s.Name == "" {
			return nil, fmt.Errorf("export config: sink %d has no name", i+1)
		}
		if names[s.Name] {
			return nil, fmt.Errorf("export config: two sinks are named %s", s.Name)
		}
		names[s.Name] = true
		sections := 0
		for _, set := range []bool{s.Elasticsearch != nil, s.SplunkHEC != nil, s.Webhook != nil} {
			if set {
				sections++
			}
		}
		want := map[string]bool{TypeElasticsearch: s.Elasticsearch != nil, TypeSplunkHEC: s.SplunkHEC != nil, TypeWebhook: s.Webhook != nil}
		set, known := want[s.Type]
		switch {
		case !known:
			return nil, fmt.Errorf("export config: sink %s: type %q: want elasticsearch, splunk_hec or webhook", s.Name, s.Type)
		case !set || sections != 1:
			return nil, fmt.Errorf("export config: sink %s: type %s needs its %s: section, and no other sink type's", s.Name, s.Type, s.Type)
		}
		switch s.Start {
		case "", "earliest", "latest":
		default:
			return nil, fmt.Errorf("export config: sink %s: start %q: want earliest or latest", s.Name, s.Start)
		}
	}
	return &f, nil
}

// Jobs builds a job per sink. brokers, when given, replace the file's.
func (f *File) Jobs(brokers []string, clientOpts []kgo.Opt, m *export.Metrics, log *slog.Logger) ([]*export.Job, error) {
	if len(brokers) == 0 {
		brokers = f.Brokers
	}
	var jobs []*export.Job
	fail := func(err error) ([]*export.Job, error) {
		for _, j := range jobs {
			j.Close()
		}
		return nil, err
	}
	for _, s := range f.Sinks {
		sink, err := s.build()
		if err != nil {
			return fail(fmt.Errorf("sink %s: %w", s.Name, err))
		}
		dlq := s.DeadLetterTopic
		if dlq == "" {
			dlq = f.DeadLetterTopic
		}
		cfg := export.JobConfig{Name: s.Name, Brokers: brokers, Group: s.Group, InstanceID: s.InstanceID,
			Topics: s.Topics, TopicRegex: s.TopicRegex, FromLatest: s.Start == "latest", DeadLetterTopic: dlq,
			MaxBatchRecords: s.Batch.Records, MaxBatchBytes: s.Batch.Bytes, MaxPollRecords: s.Batch.PollRecords,
			RetryInitial: s.Retry.Initial, RetryMax: s.Retry.Max, MaxAttempts: s.Retry.MaxAttempts,
			SessionTimeout: s.SessionTimeout, MaxInFlight: s.MaxInFlight, ClientOpts: clientOpts}
		j, err := export.NewJob(cfg, sink, m, log)
		if err != nil {
			sink.Close()
			return fail(err)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

func (s Sink) build() (export.Sink, error) {
	switch s.Type {
	case TypeElasticsearch:
		return elastic.New(*s.Elasticsearch)
	case TypeSplunkHEC:
		return hec.New(*s.SplunkHEC)
	default:
		return webhook.New(*s.Webhook)
	}
}
