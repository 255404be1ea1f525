// Package s3proxy is the chaos harness's S3 fault proxy: a reverse proxy
// between the brokers and the S3-compatible server that, while a fault is
// set, slows requests down, answers 503 SlowDown or 500 InternalError in
// S3's XML form, resets connections (before or after the request reached
// the store, so a PUT may have landed although its client saw an error),
// or holds PUTs (a stuck PUT: held until the fault is cleared, then
// forwarded, so it lands long after its client gave up).
//
// Every injection is counted by kind, and every answer of the store by
// method and status class, so the harness can assert that a fault
// happened (injected > 0) and see what a full disk behind the store did
// (5xx answers to PUTs). Requests are forwarded unchanged, Host header
// included, so the clients' SigV4 signatures stay valid.
package s3proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is a fault kind.
type Kind string

const (
	None     Kind = ""
	Latency  Kind = "latency"   // every request waits Delay (±50%)
	SlowDown Kind = "slowdown"  // Rate of requests answered 503 SlowDown
	Error500 Kind = "error500"  // Rate of requests answered 500 InternalError
	Reset    Kind = "reset"     // Rate of requests' connections reset (half before, half after forwarding)
	StuckPut Kind = "stuck-put" // every PUT held until the fault is cleared, then forwarded
	LatePut  Kind = "late-put"  // counts held PUTs forwarded after their client had gone
)

// Fault is the proxy's current fault.
type Fault struct {
	Kind  Kind
	Rate  float64       // share of requests hit, for SlowDown, Error500, Reset
	Delay time.Duration // for Latency
}

// Proxy is the fault proxy. Serve it with http.Serve.
type Proxy struct {
	rp *httputil.ReverseProxy

	mu      sync.Mutex
	base    time.Duration // added to every request, fault or not
	backgr  Fault         // the fault in force while none is set
	fault   Fault
	release chan struct{} // closed when a StuckPut fault ends
	rnd     *rand.Rand

	injected sync.Map // Kind -> *atomic.Int64
	answers  sync.Map // "PUT 5xx" -> *atomic.Int64
	requests atomic.Int64
}

// New proxies to upstream (http://host:port); dial, if set, opens the
// upstream connections (the harness dials inside the store's namespace).
func New(upstream string, seed uint64, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	p := &Proxy{rnd: rand.New(rand.NewPCG(seed, seed^0x5bd1e995)), release: make(chan struct{})}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if dial != nil {
		tr.DialContext = dial
	}
	tr.MaxIdleConnsPerHost = 64
	p.rp.Transport = tr
	p.rp.ModifyResponse = func(r *http.Response) error {
		p.count(&p.answers, fmt.Sprintf("%s %dxx", r.Request.Method, r.StatusCode/100))
		return nil
	}
	p.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		p.count(&p.answers, r.Method+" upstream-error")
		w.WriteHeader(http.StatusBadGateway)
	}
	return p, nil
}

// Set replaces the current fault (None clears it, releasing stuck PUTs).
func (p *Proxy) Set(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fault.Kind == StuckPut && f.Kind != StuckPut {
		close(p.release)
		p.release = make(chan struct{})
	}
	p.fault = f
}

// SetBase delays every request by d (±50%), whatever the fault: a store
// that is always slow, as S3 is next to a local disk.
func (p *Proxy) SetBase(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base = d
}

// SetBackground sets the fault in force whenever no other is set: a
// store that is always somewhat flaky.
func (p *Proxy) SetBackground(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backgr = f
}

// Injected returns how many requests each fault kind hit so far.
func (p *Proxy) Injected() map[Kind]int64 {
	out := map[Kind]int64{}
	p.injected.Range(func(k, v any) bool {
		out[k.(Kind)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// Answers returns the store's answers so far by "METHOD Nxx" (and
// "METHOD upstream-error" for requests that got no answer).
func (p *Proxy) Answers() map[string]int64 {
	out := map[string]int64{}
	p.answers.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// Requests is how many requests the proxy received.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

func (p *Proxy) count(m *sync.Map, key any) {
	v, _ := m.LoadOrStore(key, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	f, release, base := p.fault, p.release, p.base
	if f.Kind == None {
		f = p.backgr
	}
	hit := f.Rate > 0 && p.rnd.Float64() < f.Rate
	after := p.rnd.IntN(2) == 0
	jitter := 0.5 + p.rnd.Float64()
	p.mu.Unlock()
	if base > 0 {
		select {
		case <-time.After(time.Duration(float64(base) * jitter)):
		case <-r.Context().Done():
			return
		}
	}
	switch f.Kind {
	case Latency:
		p.count(&p.injected, Latency)
		select {
		case <-time.After(time.Duration(float64(f.Delay) * jitter)):
		case <-r.Context().Done():
			return
		}
	case SlowDown:
		if hit {
			p.count(&p.injected, SlowDown)
			s3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
			return
		}
	case Error500:
		if hit {
			p.count(&p.injected, Error500)
			s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
			return
		}
	case Reset:
		if hit {
			p.count(&p.injected, Reset)
			if after {
				// The store does the work; its answer is lost.
				rec := &discard{h: http.Header{}}
				p.rp.ServeHTTP(rec, r)
			}
			reset(w)
			return
		}
	case StuckPut:
		if r.Method == http.MethodPut {
			p.count(&p.injected, StuckPut)
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			<-release
			// Forwarded late, whatever the client did meanwhile: a PUT
			// its client gave up on still lands.
			late := r.Clone(context.Background())
			late.Body, late.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			if r.Context().Err() != nil {
				p.count(&p.injected, LatePut)
				p.rp.ServeHTTP(&discard{h: http.Header{}}, late)
				return
			}
			p.rp.ServeHTTP(w, late)
			return
		}
	}
	p.rp.ServeHTTP(w, r)
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>chaos</RequestId></Error>`, code, msg)
}

// reset closes the client's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// discard is a ResponseWriter that drops the answer.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
