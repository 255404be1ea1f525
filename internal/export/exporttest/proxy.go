package exporttest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// BulkProxy stands in front of a real `_bulk` endpoint. It forwards each
// document, counts the sends of each id (how often a record was
// delivered, which the receiver behind may not show), and injects what
// the test asks for: whole requests refused (RequestFault), single items
// refused (ItemFault; those are not forwarded and their answer item is
// spliced into the receiver's), and a required Authorization header.
type BulkProxy struct {
	// Upstream is the receiver's Elasticsearch base URL; User and
	// Password its basic-auth credentials, if any.
	Upstream       string
	User, Password string
	// RequireAuth, when set, is the exact Authorization header requests
	// must carry (401 otherwise).
	RequireAuth string
	// RequestFault is asked for each request (n from 1): a status other
	// than 0 answers the whole request with it (and Retry-After if set).
	RequestFault func(n int) (status int, retryAfter string)
	// ItemFault is asked for each document (attempt from 1 for the first
	// send of the id): a status other than 0 answers the item with it and
	// the error type given.
	ItemFault func(id string, attempt int) (status int, errType string)
	// Delay holds each request this long before answering it (a slow
	// receiver: a crash then lands while a request is in flight, and a
	// job's requests overlap). A request RequestFault refuses is
	// answered at once.
	Delay time.Duration

	srv      *httptest.Server
	client   *http.Client
	mu       sync.Mutex
	requests int
	inFlight int            // requests being served now
	maxIn    int            // the most at once
	sends    map[string]int // documents forwarded, by id
	attempts map[string]int // documents seen, by id
	auths    []string       // Authorization headers seen
}

// Start serves the proxy over plain HTTP for t.
func (p *BulkProxy) Start(t testing.TB) {
	p.init()
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
}

// StartTLS serves the proxy over TLS with the certificate pair given,
// requiring a client certificate signed by clientCA when it is not "".
func (p *BulkProxy) StartTLS(t testing.TB, certFile, keyFile, clientCA string) {
	p.init()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	p.srv = httptest.NewUnstartedServer(p)
	p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCA != "" {
		raw, err := os.ReadFile(clientCA)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(raw)
		p.srv.TLS.ClientCAs = pool
		p.srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
}

func (p *BulkProxy) init() {
	p.sends, p.attempts = map[string]int{}, map[string]int{}
	p.client = &http.Client{Timeout: 60 * time.Second}
}

// URL is the proxy's base URL (the sink adds /_bulk).
func (p *BulkProxy) URL() string { return p.srv.URL }

// Sends returns how often each id was forwarded to the receiver.
func (p *BulkProxy) Sends() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.sends))
	for k, v := range p.sends {
		out[k] = v
	}
	return out
}

// Requests is the number of _bulk requests received.
func (p *BulkProxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// MaxInFlight is the most _bulk requests the proxy was serving at once.
func (p *BulkProxy) MaxInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxIn
}

// Auths returns the Authorization headers seen.
func (p *BulkProxy) Auths() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.auths...)
}

type bulkPair struct {
	action, doc []byte
	op, id      string
	fault       map[string]any // the answer item of an injected fault
}

func (p *BulkProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/_bulk") {
		http.Error(w, "the proxy serves POST .../_bulk only", http.StatusNotFound)
		return
	}
	p.mu.Lock()
	p.requests++
	n := p.requests
	p.inFlight++
	p.maxIn = max(p.maxIn, p.inFlight)
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}()
	p.auths = append(p.auths, r.Header.Get("Authorization"))
	p.mu.Unlock()
	if p.RequireAuth != "" && r.Header.Get("Authorization") != p.RequireAuth {
		http.Error(w, `{"error":{"type":"security_exception","reason":"missing authentication credentials"},"status":401}`, http.StatusUnauthorized)
		return
	}
	if p.RequestFault != nil {
		if status, ra := p.RequestFault(n); status != 0 {
			if ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			http.Error(w, `{"error":{"type":"injected","reason":"refused by the test proxy"},"status":`+fmt.Sprint(status)+`}`, status)
			return
		}
	}
	if p.Delay > 0 {
		time.Sleep(p.Delay)
	}
	pairs, err := readPairs(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var fwd bytes.Buffer
	p.mu.Lock()
	for i := range pairs {
		pr := &pairs[i]
		p.attempts[pr.id]++
		if p.ItemFault != nil {
			if status, typ := p.ItemFault(pr.id, p.attempts[pr.id]); status != 0 {
				pr.fault = map[string]any{pr.op: map[string]any{"_id": pr.id, "status": status,
					"error": map[string]any{"type": typ, "reason": "injected by the test proxy"}}}
				continue
			}
		}
		p.sends[pr.id]++
		fwd.Write(pr.action)
		fwd.WriteByte('\n')
		fwd.Write(pr.doc)
		fwd.WriteByte('\n')
	}
	p.mu.Unlock()
	var items []json.RawMessage
	if fwd.Len() > 0 {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, strings.TrimRight(p.Upstream, "/")+"/_bulk", &fwd)
		req.Header.Set("Content-Type", "application/x-ndjson")
		if p.User != "" {
			req.SetBasicAuth(p.User, p.Password)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			w.WriteHeader(resp.StatusCode)
			w.Write(raw)
			return
		}
		var ans struct {
			Items []json.RawMessage `json:"items"`
			Error any               `json:"error"`
		}
		if err := json.Unmarshal(raw, &ans); err != nil || ans.Error != nil {
			w.WriteHeader(http.StatusOK)
			w.Write(raw) // as the receiver said it
			return
		}
		items = ans.Items
	}
	var out []any
	errs := false
	for _, pr := range pairs {
		if pr.fault != nil {
			out = append(out, pr.fault)
			errs = true
			continue
		}
		if len(items) == 0 {
			out = append(out, map[string]any{pr.op: map[string]any{"_id": pr.id, "status": 500,
				"error": map[string]any{"type": "proxy", "reason": "receiver answered fewer items"}}})
			errs = true
			continue
		}
		out = append(out, items[0])
		items = items[1:]
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": errs, "items": out})
}

// readPairs reads a _bulk body of create/index actions and documents.
func readPairs(body io.Reader) ([]bulkPair, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var out []bulkPair
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var act map[string]struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(line, &act); err != nil || len(act) != 1 {
			return nil, fmt.Errorf("bad action line %q", line)
		}
		pr := bulkPair{action: append([]byte(nil), line...)}
		for op, a := range act {
			pr.op, pr.id = op, a.ID
		}
		if !sc.Scan() {
			return nil, fmt.Errorf("action without a document: %q", line)
		}
		pr.doc = append([]byte(nil), sc.Bytes()...)
		out = append(out, pr)
	}
	return out, sc.Err()
}
