package parse

import (
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Squid access.log lines in the native format:
//
//	time elapsed client code/status bytes method URL ident hierarchy/peer type
//
// become HTTP Activity.

var squidProduct = ocsf.Product{Name: "Squid", Vendor: "Squid"}

// httpActivity maps a request method to the HTTP Activity activity_id.
func httpActivity(method string) (int, string) {
	switch strings.ToUpper(method) {
	case "CONNECT":
		return 1, "Connect"
	case "DELETE":
		return 2, "Delete"
	case "GET":
		return 3, "Get"
	case "HEAD":
		return 4, "Head"
	case "OPTIONS":
		return 5, "Options"
	case "POST":
		return 6, "Post"
	case "PUT":
		return 7, "Put"
	case "TRACE":
		return 8, "Trace"
	}
	return ocsf.ActivityOther, "Other"
}

// Squid parses one access.log line; host (the proxy) keys the event, the
// client address when host is empty.
func (p *Parsers) Squid(line []byte, host string) Result { return p.squidLine(line, host, line) }

func (p *Parsers) squidLine(line []byte, host string, raw []byte) Result {
	if !utf8.Valid(line) {
		return fail(SourceSquid, raw, "invalid UTF-8")
	}
	// A line that is not in the native format (cache.log, a custom
	// logformat) is still Squid's: a generic event.
	text := func() Result { return p.textBase(SourceSquid, squidProduct, "access", host, string(line), raw) }
	f := strings.Fields(string(line))
	if len(f) < 10 {
		return text()
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil || secs <= 0 {
		return text()
	}
	elapsed, err := strconv.Atoi(f[1])
	if err != nil {
		return text()
	}
	cache, status, ok := strings.Cut(f[3], "/")
	if !ok {
		return text()
	}
	method, target := f[5], f[6]
	act, name := httpActivity(method)
	ts := time.UnixMilli(int64(secs*1000 + 0.5)).UTC()
	e := ocsf.New(ocsf.HTTPActivity, act, name, ts, squidProduct)
	e.Set("http_request.http_method", method)
	e.Set("http_request.url.url_string", target)
	if method == "CONNECT" {
		h, port, _ := strings.Cut(target, ":")
		e.Set("http_request.url.hostname", h)
		if n, err := strconv.Atoi(port); err == nil {
			e.Set("http_request.url.port", n)
		}
		e.Set("dst_endpoint.hostname", h)
	} else if u, err := url.Parse(target); err == nil {
		e.Set("http_request.url.scheme", u.Scheme)
		e.Set("http_request.url.hostname", u.Hostname())
		e.Set("http_request.url.path", u.EscapedPath())
		e.Set("http_request.url.query_string", u.RawQuery)
		e.Set("dst_endpoint.hostname", u.Hostname())
	}
	if code, err := strconv.Atoi(status); err == nil {
		e.Set("http_response.code", code)
	}
	if ct := f[9]; ct != "-" {
		e.Set("http_response.content_type", ct)
	}
	e.Set("src_endpoint.ip", f[2])
	if _, peer, ok := strings.Cut(f[8], "/"); ok && peer != "-" {
		e.Set("dst_endpoint.ip", peer)
	}
	if n, err := strconv.ParseInt(f[4], 10, 64); err == nil {
		e.Set("traffic.bytes_in", n)
	}
	e["duration"] = elapsed
	if user := f[7]; user != "-" {
		e.Set("actor.user.name", user)
	}
	if host == "" {
		host = f[2]
	}
	e.Set("proxy_endpoint.hostname", host)
	e["unmapped"] = map[string]any{"cache_result": cache, "hierarchy": f[8], "ident": f[7], "status": status}
	return finish(SourceSquid, host, raw, e)
}
