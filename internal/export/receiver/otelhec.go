package receiver

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// OtelHECInstall says how to get the collector.
const OtelHECInstall = "otelhec, the OpenTelemetry Collector with the Splunk HEC receiver (built by .ci/install from internal/export/receiver/otelhec)"

// OtelHEC is one OpenTelemetry Collector process receiving Splunk HEC
// (splunkhecreceiver), tokens checked by bearertokenauth and indexer
// acknowledgement by the ack extension: a real HEC implementation, with
// Splunk's channel and ack protocol, that Vigil's sink did not shape.
// What it receives is written by the file exporter, for Events.
type OtelHEC struct {
	p      *process
	addr   string
	out    string
	client *http.Client
}

// LaunchOtelHEC starts the collector over dir, accepting token, with
// indexer acknowledgement on if ack.
func LaunchOtelHEC(bin, dir, token string, ack bool) (*OtelHEC, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	o := &OtelHEC{addr: addr, out: filepath.Join(dir, "received.json"), client: &http.Client{Timeout: 10 * time.Second}}
	ackConf := ""
	if ack {
		ackConf = "    ack:\n      extension: ack/hec\n"
	}
	// Its own telemetry listens on :8888 unless told not to; two
	// collectors (or anything else there) would clash.
	conf := fmt.Sprintf(`extensions:
  ack/hec: {}
  bearertokenauth/hec:
    scheme: Splunk
    token: %q
receivers:
  splunk_hec:
    endpoint: %q
%s    auth:
      authenticator: bearertokenauth/hec
exporters:
  file:
    path: %q
    flush_interval: 50ms
service:
  extensions: [ack/hec, bearertokenauth/hec]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [splunk_hec]
      exporters: [file]
`, token, addr, ackConf, o.out)
	confPath := filepath.Join(dir, "otelhec.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	// The receiver answers its health path without a token.
	o.p, err = startProcess("otelhec", bin, []string{"--config", confPath}, nil, "http://"+addr+"/services/collector/health", o.client)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// Stop stops the process.
func (o *OtelHEC) Stop() { o.p.stop() }

// Output is the last lines the process wrote.
func (o *OtelHEC) Output() string { return Tail(o.p.out.String()) }

// URL is its base URL (the sink adds /services/collector/event).
func (o *OtelHEC) URL() string { return "http://" + o.addr }

// HECEvent is one event as the collector received it.
type HECEvent struct {
	// ID is the vigil_id indexed field (topic:partition:offset).
	ID         string
	Sourcetype string
	Source     string
	// Body is the event, decoded from the collector's log body.
	Body map[string]any
}

// Events reads every event the collector has written out so far.
func (o *OtelHEC) Events() ([]HECEvent, error) {
	f, err := os.Open(o.out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []HECEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var doc struct {
			ResourceLogs []struct {
				Resource struct {
					Attributes []otelKV `json:"attributes"`
				} `json:"resource"`
				ScopeLogs []struct {
					LogRecords []struct {
						Body       otelValue `json:"body"`
						Attributes []otelKV  `json:"attributes"`
					} `json:"logRecords"`
				} `json:"scopeLogs"`
			} `json:"resourceLogs"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			// The last line may be half written.
			continue
		}
		for _, rl := range doc.ResourceLogs {
			res := kvMap(rl.Resource.Attributes)
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					ev := HECEvent{Sourcetype: str(res["com.splunk.sourcetype"]), Source: str(res["com.splunk.source"])}
					ev.ID = str(kvMap(lr.Attributes)["vigil_id"])
					if m, ok := lr.Body.decode().(map[string]any); ok {
						ev.Body = m
					}
					out = append(out, ev)
				}
			}
		}
	}
	return out, sc.Err()
}

// otelKV and otelValue are OTLP's JSON encoding of attributes and values.
type otelKV struct {
	Key   string    `json:"key"`
	Value otelValue `json:"value"`
}

type otelValue struct {
	String *string  `json:"stringValue"`
	Double *float64 `json:"doubleValue"`
	Int    *string  `json:"intValue"`
	Bool   *bool    `json:"boolValue"`
	KVList *struct {
		Values []otelKV `json:"values"`
	} `json:"kvlistValue"`
	Array *struct {
		Values []otelValue `json:"values"`
	} `json:"arrayValue"`
}

func (v otelValue) decode() any {
	switch {
	case v.String != nil:
		return *v.String
	case v.Double != nil:
		return *v.Double
	case v.Int != nil:
		return *v.Int
	case v.Bool != nil:
		return *v.Bool
	case v.KVList != nil:
		return kvMap(v.KVList.Values)
	case v.Array != nil:
		out := make([]any, len(v.Array.Values))
		for i, e := range v.Array.Values {
			out[i] = e.decode()
		}
		return out
	}
	return nil
}

func kvMap(kvs []otelKV) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.decode()
	}
	return m
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
