package exporttest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
)

// LateReader is an http.RoundTripper that answers every request at once
// and reads its body only when asked, as net/http's transport may when a
// receiver answers before it has read the whole request (RoundTrip "may
// [close the body] in a separate goroutine even after RoundTrip
// returns"). The sinks' tests use it to show a pooled request body is not
// rewritten while the transport may still be sending it: no receiver
// here answers early on demand.
type LateReader struct {
	Answer string // the body of every answer
	mu     sync.Mutex
	held   []io.ReadCloser
}

// RoundTrip holds the request's body and answers 200 with Answer.
func (l *LateReader) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.held = append(l.held, req.Body)
	l.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(l.Answer)), Request: req}, nil
}

// ReadAll reads and closes the bodies held, in the order they came.
func (l *LateReader) ReadAll() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, b := range l.held {
		var buf bytes.Buffer
		io.Copy(&buf, b)
		b.Close()
		out = append(out, buf.Bytes())
	}
	l.held = nil
	return out
}
