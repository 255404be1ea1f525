package s3proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFaults drives each fault kind through the proxy against a stand-in
// upstream and checks what clients see and what is counted.
func TestFaults(t *testing.T) {
	var puts atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			io.Copy(io.Discard, r.Body)
			puts.Add(1)
		}
		w.Write([]byte("ok"))
	}))
	defer up.Close()
	p, err := New(up.URL, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	do := func(method string, timeout time.Duration) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+"/b/k", strings.NewReader("data"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := do(http.MethodGet, time.Second); err != nil || code != 200 {
		t.Fatalf("no fault: %d %v", code, err)
	}
	p.Set(Fault{Kind: SlowDown, Rate: 1})
	if code, _ := do(http.MethodGet, time.Second); code != 503 {
		t.Errorf("slowdown: %d", code)
	}
	p.Set(Fault{Kind: Error500, Rate: 1})
	if code, _ := do(http.MethodGet, time.Second); code != 500 {
		t.Errorf("error500: %d", code)
	}
	p.Set(Fault{Kind: Reset, Rate: 1})
	if _, err := do(http.MethodGet, time.Second); err == nil {
		t.Errorf("reset: the request succeeded")
	}
	p.Set(Fault{Kind: Latency, Delay: 100 * time.Millisecond})
	start := time.Now()
	if code, _ := do(http.MethodGet, time.Second); code != 200 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("latency: %d after %v", code, time.Since(start))
	}
	// A stuck PUT whose client gives up still lands once released.
	before := puts.Load()
	p.Set(Fault{Kind: StuckPut})
	if _, err := do(http.MethodPut, 200*time.Millisecond); err == nil {
		t.Errorf("stuck put: answered")
	}
	// The server notices the client's closed connection asynchronously;
	// released before that, the PUT is not late.
	time.Sleep(500 * time.Millisecond)
	p.Set(Fault{})
	deadline := time.Now().Add(5 * time.Second)
	for puts.Load() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if puts.Load() == before {
		t.Errorf("the stuck PUT never reached the store")
	}
	got := p.Injected()
	for _, k := range []Kind{SlowDown, Error500, Reset, Latency, StuckPut, LatePut} {
		if got[k] == 0 {
			t.Errorf("%s not counted: %v", k, got)
		}
	}
	if p.Answers()["GET 2xx"] == 0 {
		t.Errorf("answers not counted: %v", p.Answers())
	}
}
