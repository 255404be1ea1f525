package exporttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HECProxy stands in front of a real HEC endpoint (VictoriaLogs') and
// adds what Splunk does there and the receiver does not: the token check
// (`Authorization: Splunk <token>`), and with Ack the indexer
// acknowledgement protocol: a channel header required on every request,
// an ackId per accepted batch, and /services/collector/ack answering
// whether each id is acknowledged. The test decides when acks come
// (HoldAcks), to see that the sink waits for them.
type HECProxy struct {
	Upstream string // the receiver's base URL
	Token    string
	Ack      bool
	// HoldAcks, while true, makes every ack poll answer false.
	HoldAcks atomic.Bool
	// RequestFault is asked for each event request (n from 1): a status
	// other than 0 answers it (with Retry-After if set); nothing is
	// forwarded.
	RequestFault func(n int) (status int, retryAfter string)

	srv      *httptest.Server
	client   *http.Client
	mu       sync.Mutex
	requests int
	nextAck  map[string]int64
	acked    map[string]map[int64]bool // channel -> ackId -> released once
	polls    int
	sends    map[string]int // events forwarded, by fields.vigil_id
	events   []map[string]any
}

// Start serves the proxy for t.
func (p *HECProxy) Start(t testing.TB) {
	p.nextAck, p.acked, p.sends = map[string]int64{}, map[string]map[int64]bool{}, map[string]int{}
	p.client = &http.Client{Timeout: 60 * time.Second}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
}

// URL is the proxy's base URL.
func (p *HECProxy) URL() string { return p.srv.URL }

// Sends returns how often each vigil_id was forwarded.
func (p *HECProxy) Sends() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.sends))
	for k, v := range p.sends {
		out[k] = v
	}
	return out
}

// Events returns the HEC events forwarded, decoded.
func (p *HECProxy) Events() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.events...)
}

// Polls is the number of ack polls answered.
func (p *HECProxy) Polls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.polls
}

func hecError(w http.ResponseWriter, status int, text string, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"text":%q,"code":%d}`, text, code)
}

func (p *HECProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		hecError(w, http.StatusUnauthorized, "Token is required", 2)
		return
	}
	if auth != "Splunk "+p.Token {
		hecError(w, http.StatusForbidden, "Invalid token", 4)
		return
	}
	channel := r.Header.Get("X-Splunk-Request-Channel")
	if channel == "" {
		channel = r.URL.Query().Get("channel")
	}
	if p.Ack && channel == "" {
		hecError(w, http.StatusBadRequest, "Data channel is missing", 10)
		return
	}
	switch r.URL.Path {
	case "/services/collector/event":
		p.event(w, r, channel)
	case "/services/collector/ack":
		p.ack(w, r, channel)
	default:
		hecError(w, http.StatusNotFound, "The requested URL was not found on this server.", 404)
	}
}

func (p *HECProxy) event(w http.ResponseWriter, r *http.Request, channel string) {
	p.mu.Lock()
	p.requests++
	n := p.requests
	p.mu.Unlock()
	if p.RequestFault != nil {
		if status, ra := p.RequestFault(n); status != 0 {
			if ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			hecError(w, status, "Server is busy", 9)
			return
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		hecError(w, http.StatusBadRequest, "Invalid data format", 6)
		return
	}
	var evs []map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	for dec.More() {
		var ev map[string]any
		if err := dec.Decode(&ev); err != nil {
			hecError(w, http.StatusBadRequest, "Invalid data format", 6)
			return
		}
		evs = append(evs, ev)
	}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, strings.TrimRight(p.Upstream, "/")+"/services/collector/event", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		hecError(w, http.StatusServiceUnavailable, "Server is busy", 9)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		hecError(w, http.StatusServiceUnavailable, "Server is busy", 9)
		return
	}
	p.mu.Lock()
	for _, ev := range evs {
		if f, ok := ev["fields"].(map[string]any); ok {
			if id, ok := f["vigil_id"].(string); ok {
				p.sends[id]++
			}
		}
	}
	p.events = append(p.events, evs...)
	var ackID int64 = -1
	if p.Ack {
		ackID = p.nextAck[channel]
		p.nextAck[channel]++
		if p.acked[channel] == nil {
			p.acked[channel] = map[int64]bool{}
		}
		p.acked[channel][ackID] = false
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if ackID >= 0 {
		fmt.Fprintf(w, `{"text":"Success","code":0,"ackId":%d}`, ackID)
		return
	}
	fmt.Fprint(w, `{"text":"Success","code":0}`)
}

func (p *HECProxy) ack(w http.ResponseWriter, r *http.Request, channel string) {
	if !p.Ack {
		hecError(w, http.StatusBadRequest, "ACK is disabled", 14)
		return
	}
	var q struct {
		Acks []int64 `json:"acks"`
	}
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		hecError(w, http.StatusBadRequest, "Invalid data format", 6)
		return
	}
	out := map[string]bool{}
	p.mu.Lock()
	p.polls++
	for _, id := range q.Acks {
		_, known := p.acked[channel][id]
		// Splunk answers an id once true, then forgets it.
		if known && !p.HoldAcks.Load() {
			out[fmt.Sprint(id)] = true
			delete(p.acked[channel], id)
		} else {
			out[fmt.Sprint(id)] = false
		}
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"acks": out})
}
