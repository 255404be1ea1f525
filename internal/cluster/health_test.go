package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSession is a lease whose standing the test sets.
type fakeSession struct {
	valid atomic.Bool
	done  chan struct{}
}

func (s *fakeSession) Valid() bool              { return s.valid.Load() }
func (s *fakeSession) Done() <-chan struct{}    { return s.done }
func (s *fakeSession) Changed() <-chan struct{} { return make(chan struct{}) }
func (s *fakeSession) Close() error             { return nil }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLeaseHealthReported is the regression test of the silent etcd
// outage: while etcd was down every partition stopped acknowledging
// (the lease could not be confirmed) and nothing said why. The member
// must log the moment the lease goes unconfirmed and the moment it is
// confirmed again, and report it through Health (the metrics and /readyz).
func TestLeaseHealthReported(t *testing.T) {
	var logs syncBuffer
	m := New(Config{BrokerID: 7, LeaseTTL: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil, nil, nil)
	sess := &fakeSession{done: make(chan struct{})}
	sess.valid.Store(true)
	m.sess = sess
	m.health.LeaseConfirmed = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.watchLease(ctx)

	waitFor := func(what string, ok func(Health) bool) Health {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			h := m.Health()
			if ok(h) {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: never; health %+v, logs:\n%s", what, h, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if h := m.Health(); !h.Joined || !h.LeaseConfirmed {
		t.Fatalf("a valid lease: %+v", h)
	}
	sess.valid.Store(false) // etcd stops answering renewals
	h := waitFor("unconfirmed", func(h Health) bool { return !h.UnconfirmedSince.IsZero() })
	if h.LeaseConfirmed || !h.Joined || h.Unconfirmed != 1 {
		t.Errorf("while unconfirmed: %+v", h)
	}
	if !strings.Contains(logs.String(), "cluster lease cannot be confirmed") || !strings.Contains(logs.String(), "holds its acknowledgements") {
		t.Errorf("no log line says why acknowledgements stopped:\n%s", logs.String())
	}
	sess.valid.Store(true) // etcd answers again
	h = waitFor("confirmed again", func(h Health) bool { return h.UnconfirmedSince.IsZero() })
	if !h.LeaseConfirmed || h.Unconfirmed != 1 {
		t.Errorf("after etcd came back: %+v", h)
	}
	if !strings.Contains(logs.String(), "cluster lease confirmed again") {
		t.Errorf("no log line says acknowledgements resumed:\n%s", logs.String())
	}
	close(sess.done) // the store says the lease is gone
	if h := m.Health(); h.Joined {
		t.Errorf("a lost lease reported as joined: %+v", h)
	}
}
