package export

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestTemplate(t *testing.T) {
	r := &kgo.Record{Topic: "ocsf.auth", Partition: 2, Offset: 41, Value: []byte(`{"class_uid":3002,"class_name":"Authentication","time":1764233400123}`)}
	d, err := NewDoc(r)
	if err != nil {
		t.Fatal(err)
	}
	for tpl, want := range map[string]string{
		"vigil-{class}-{yyyy.MM.dd}":          "vigil-authentication-2025.11.27",
		"{topic}/{class_uid}/{yyyy-MM-dd_HH}": "ocsf.auth/3002/2025-11-27_08",
		"ocsf:{class}":                        "ocsf:authentication",
		"plain":                               "plain",
	} {
		tp, err := ParseTemplate(tpl)
		if err != nil {
			t.Fatal(err)
		}
		if got := tp.Render(d); got != want {
			t.Errorf("%s: %q, want %q", tpl, got, want)
		}
	}
	for _, bad := range []string{"vigil-{clas}", "vigil-{yyyy", "{}"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if d.ID != "ocsf.auth:2:41" {
		t.Errorf("id %q", d.ID)
	}
}

func TestNewDoc(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	for v, want := range map[string]struct {
		class string
		time  time.Time
		ok    bool
	}{
		`{"class_uid":2004,"class_name":"Detection Finding","time":1764233400123}`: {"detection_finding", time.UnixMilli(1764233400123), true},
		`{"class_uid":0}`: {"class_0", ts, true},
		"  {\"a\":1}\n":   {"unknown", ts, true},
		`{"class_name":"HTTP Activity","time":"soon"}`: {"http_activity", ts, true},
		`[1,2]`:         {"", ts, false},
		`not json`:      {"", ts, false},
		`{"class_uid":`: {"", ts, false},
	} {
		d, err := NewDoc(&kgo.Record{Topic: "t", Value: []byte(v), Timestamp: ts})
		if (err == nil) != want.ok {
			t.Errorf("%s: err %v", v, err)
			continue
		}
		if err == nil && (d.Class() != want.class || !d.Time.Equal(want.time)) {
			t.Errorf("%s: class %q time %v; want %q %v", v, d.Class(), d.Time, want.class, want.time)
		}
	}
}

func TestRetryAfterAndJSON(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{"": 0, "3": 3 * time.Second, "-1": 0, "soon": 0,
		"Sun, 06 Dec 2026 10:00:05 GMT": 5 * time.Second} {
		if got := RetryAfter(h, now); got != want {
			t.Errorf("Retry-After %q: %v, want %v", h, got, want)
		}
	}
	for _, s := range []string{"plain", "quo\"te\\", "line\nbreak\t\x01", "ünïcode ✓", "bad \xff byte"} {
		var back string
		if err := json.Unmarshal(AppendJSONString(nil, s), &back); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	j := &Job{cfg: JobConfig{RetryInitial: 100 * time.Millisecond, RetryMax: time.Second}}
	for n, lo := range map[int]time.Duration{1: 80 * time.Millisecond, 2: 160 * time.Millisecond, 4: 640 * time.Millisecond, 30: 800 * time.Millisecond} {
		if d := j.backoff(n); d < lo || d > time.Second {
			t.Errorf("backoff(%d) = %v", n, d)
		}
	}
}
