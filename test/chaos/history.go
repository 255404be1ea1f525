package main

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/vigilhq/vigil/test/chaos/checker"
)

// History records a run's operations in memory (for the checker) and,
// as they come, in a gzipped JSON-lines file (one checker.Op a line).
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []checker.Op
	f     *os.File
	gz    *gzip.Writer
	enc   *json.Encoder
}

func newHistory(path string) (*History, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	gz := gzip.NewWriter(f)
	return &History{start: time.Now(), f: f, gz: gz, enc: json.NewEncoder(gz)}, nil
}

// Since is the history's clock: ns since the run started.
func (h *History) Since() int64 { return int64(time.Since(h.start)) }

// Add appends op, stamping its completion time.
func (h *History) Add(op checker.Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.T = h.Since()
	h.ops = append(h.ops, op)
	h.enc.Encode(op)
}

// Ops returns the operations so far.
func (h *History) Ops() []checker.Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]checker.Op(nil), h.ops...)
}

// Close flushes the file.
func (h *History) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.gz.Close(); err != nil {
		h.f.Close()
		return err
	}
	return h.f.Close()
}
