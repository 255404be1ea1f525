package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestReadyzChecks: /readyz answers 503 naming why while a ready check
// fails (the cluster lease unconfirmed, etcd down), and 200 again after.
func TestReadyzChecks(t *testing.T) {
	m := New()
	var down atomic.Bool
	m.AddReadyCheck(func() error {
		if down.Load() {
			return errors.New("cluster lease unconfirmed since 3s ago")
		}
		return nil
	})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Errorf("before SetReady: %d", code)
	}
	m.SetReady(true)
	if code, body := get(); code != http.StatusOK {
		t.Errorf("ready: %d %s", code, body)
	}
	down.Store(true)
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "cluster lease unconfirmed") {
		t.Errorf("check failing: %d %q", code, body)
	}
	down.Store(false)
	if code, _ := get(); code != http.StatusOK {
		t.Errorf("check passing again: %d", code)
	}
}
