// Package elastic is the Elasticsearch / OpenSearch sink of `vigil
// export`: documents sent with the `_bulk` API, one action per record.
//
// Idempotence comes from the document id: each record's is its position,
// "topic:partition:offset" (export.Doc.ID), so a record sent twice (after
// a crash, a rebalance, a retry of a request whose answer was lost)
// names the same document. The action is "create" by default and a 409
// (version_conflict_engine_exception: the id exists) counts as delivered:
// the document written first stands, Vigil never rewrites one, its
// _version stays 1, and create is the only action data streams accept.
// "op: index" instead overwrites the document with the same bytes (a
// record always renders to the same document); use it for an index where
// something else may have written the id first and Vigil's copy must win.
//
// Index names come from a template (export.Template), by default
// "vigil-{class}-{yyyy.MM.dd}": the event's OCSF class and the UTC day of
// its time. Each item of the answer is judged on its own: 2xx (and 409 on
// create) delivered, 429 and 5xx retried, any other status dead-lettered
// with its error type and reason.
package elastic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vigilhq/vigil/internal/export"
)

// DefaultIndex is the index template when none is given.
const DefaultIndex = "vigil-{class}-{yyyy.MM.dd}"

// Config is the `elasticsearch:` section of a sink.
type Config struct {
	// URL is the cluster's base URL (https://es:9200; ZincSearch's
	// http://zinc:4080/es); "/_bulk" is added unless it ends so.
	URL string `yaml:"url"`
	// Index is the index template (DefaultIndex).
	Index string `yaml:"index"`
	// Op is the bulk action: create (default) or index.
	Op string `yaml:"op"`
	// Basic authentication, or an API key (the base64 "encoded" value
	// Elasticsearch returns, sent as "Authorization: ApiKey ..."); each
	// secret inline or, better, from a file.
	Username     string            `yaml:"username"`
	Password     string            `yaml:"password"`
	PasswordFile string            `yaml:"password_file"`
	APIKey       string            `yaml:"api_key"`
	APIKeyFile   string            `yaml:"api_key_file"`
	Headers      map[string]string `yaml:"headers"`
	TLS          export.TLS        `yaml:"tls"`
	// Timeout bounds one request (default 30s).
	Timeout time.Duration `yaml:"timeout"`
}

// Sink is an Elasticsearch _bulk sink.
type Sink struct {
	url    string
	index  *export.Template
	op     string
	auth   string // Authorization header, "" for none
	user   string
	pass   string
	hdr    map[string]string
	client *http.Client
	// bufs holds request bodies between Deliver calls, which may run at
	// once; a body is back once the transport has closed it (NewPost).
	bufs sync.Pool
}

type buffers struct {
	body bytes.Buffer
	line []byte
}

// New checks the configuration and reads the secrets.
func New(c Config) (*Sink, error) {
	if c.URL == "" {
		return nil, errors.New("elasticsearch: url is required")
	}
	u := strings.TrimRight(c.URL, "/")
	if !strings.HasSuffix(u, "/_bulk") {
		u += "/_bulk"
	}
	if c.Index == "" {
		c.Index = DefaultIndex
	}
	tpl, err := export.ParseTemplate(c.Index)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: index: %w", err)
	}
	switch c.Op {
	case "":
		c.Op = "create"
	case "create", "index":
	default:
		return nil, fmt.Errorf("elasticsearch: op %q: want create or index", c.Op)
	}
	s := &Sink{url: u, index: tpl, op: c.Op, hdr: c.Headers}
	pass, err := export.Secret(c.Password, c.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: password_file: %w", err)
	}
	key, err := export.Secret(c.APIKey, c.APIKeyFile)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: api_key_file: %w", err)
	}
	switch {
	case key != "" && c.Username != "":
		return nil, errors.New("elasticsearch: give username/password or api_key, not both")
	case key != "":
		s.auth = "ApiKey " + key
	case c.Username != "":
		s.user, s.pass = c.Username, pass
	}
	if s.client, err = export.NewHTTPClient(c.TLS, c.Timeout); err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	return s, nil
}

// Close closes idle connections.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Deliver sends docs as one _bulk request.
func (s *Sink) Deliver(ctx context.Context, docs []*export.Doc, res []export.Result) error {
	b, _ := s.bufs.Get().(*buffers)
	if b == nil {
		b = new(buffers)
	}
	b.body.Reset()
	for _, d := range docs {
		b.line = append(b.line[:0], `{"`...)
		b.line = append(b.line, s.op...)
		b.line = append(b.line, `":{"_index":`...)
		b.line = export.AppendJSONString(b.line, indexName(s.index.Append(nil, d)))
		b.line = append(b.line, `,"_id":`...)
		b.line = export.AppendJSONString(b.line, d.ID)
		b.line = append(b.line, "}}\n"...)
		b.body.Write(b.line)
		writeOneLine(&b.body, d.Value())
		b.body.WriteByte('\n')
	}
	// The pool gets b back once the transport is done with its body.
	req, err := export.NewPost(ctx, s.url, b.body.Bytes(), func() { s.bufs.Put(b) })
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	for k, v := range s.hdr {
		req.Header.Set(k, v)
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	} else if s.user != "" {
		req.SetBasicAuth(s.user, s.pass)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return export.ErrorFromResponse(resp)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read _bulk answer: %w", err)
	}
	return s.readAnswer(raw, res)
}

// readAnswer sets each document's result from a _bulk answer. The items
// are walked in place rather than decoded into maps, which cost as much
// CPU as the rest of an export.
func (s *Sink) readAnswer(raw []byte, res []export.Result) error {
	if !gjson.ValidBytes(raw) {
		return fmt.Errorf("_bulk answer is not JSON: %.200q", raw)
	}
	top := gjson.GetManyBytes(raw, "error", "items")
	if e := top[0]; e.Exists() && e.Type != gjson.Null {
		// The request failed part way: which items were written is not
		// said, so all are sent again (their ids make that safe).
		return &export.RequestError{Status: http.StatusInternalServerError, Body: "_bulk answered 200 with an error: " + e.Raw}
	}
	n := 0
	top[1].ForEach(func(_, item gjson.Result) bool {
		if n == len(res) {
			return false
		}
		var it gjson.Result // the item's one member, keyed by its action
		item.ForEach(func(_, v gjson.Result) bool { it = v; return false })
		status := int(it.Get("status").Int())
		reason := ""
		switch e := it.Get("error"); {
		case status == http.StatusConflict && s.op == "create":
			res[n] = export.Result{Outcome: export.Delivered} // the id exists: delivered before
			n++
			return true
		case e.Exists() && e.Type != gjson.Null:
			reason = fmt.Sprintf("%d %s: %s", status, e.Get("type").String(), e.Get("reason").String())
		case status/100 != 2:
			reason = fmt.Sprintf("status %d", status)
		}
		res[n] = export.ItemResult(status, reason)
		n++
		return true
	})
	for i := n; i < len(res); i++ {
		// An answer shorter than the request: send the rest again.
		res[i] = export.Result{Outcome: export.Retry, Reason: "no item in the _bulk answer"}
	}
	return nil
}

// indexName makes a rendered template a valid index name: lower case,
// without the characters Elasticsearch forbids.
func indexName(b []byte) string {
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == ' ' || c == '\\' || c == '/' || c == '*' || c == '?' || c == '"' || c == '<' || c == '>' || c == '|' || c == ',' || c == '#' || c == ':':
			b[i] = '_'
		}
	}
	return string(b)
}

// writeOneLine writes a JSON document on one line: a raw line break can
// only be whitespace between tokens in valid JSON (inside strings they
// are escaped), so it becomes a space.
func writeOneLine(w *bytes.Buffer, v []byte) {
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		w.Write(v)
		return
	}
	for _, c := range v {
		if c == '\n' || c == '\r' {
			c = ' '
		}
		w.WriteByte(c)
	}
}

var _ export.Sink = (*Sink)(nil)
