package parse

import (
	"encoding/json"
	"time"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Zeek JSON logs (LogAscii::use_json=T; `_path` names the log when
// several are mixed, as json-streaming-logs and most shippers add it):
// conn and ssl become Network Activity, dns DNS Activity, http HTTP
// Activity. The originator (id.orig_h) keys the event: it is the host the
// activity is about.

var zeekProduct = ocsf.Product{Name: "Zeek", Vendor: "Zeek"}

// zeekPath names the log a record came from, guessing from its fields
// when `_path` is missing.
func zeekPath(o map[string]any) string {
	if p := str(o, "_path"); p != "" {
		return p
	}
	has := func(k string) bool { _, ok := o[k]; return ok }
	switch {
	case has("query") || has("qtype_name"):
		return "dns"
	case has("method") || has("status_code"):
		return "http"
	case has("cipher") || has("server_name") || has("ssl_history"):
		return "ssl"
	case has("conn_state") || has("proto"):
		return "conn"
	}
	return ""
}

// zeekTime reads ts: epoch seconds (the default) or ISO 8601
// (LogAscii::json_timestamps=JSON::TS_ISO8601).
func zeekTime(o map[string]any) (time.Time, error) {
	switch v := o["ts"].(type) {
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return time.Time{}, err
		}
		return time.UnixMilli(int64(f*1000 + 0.5)).UTC(), nil
	case string:
		return time.Parse(time.RFC3339Nano, v)
	}
	return time.Time{}, errNoTime
}

// Zeek maps one Zeek log record.
func (p *Parsers) Zeek(o map[string]any, raw []byte) Result {
	path := zeekPath(o)
	ts, err := zeekTime(o)
	if err != nil {
		return fail(SourceZeek, raw, "zeek: ts: %v", err)
	}
	host := str(o, "id.orig_h")
	if host == "" {
		return fail(SourceZeek, raw, "zeek: %s record without id.orig_h", path)
	}
	endpoints := func(e ocsf.Event) {
		e.Set("src_endpoint.ip", host)
		setNum(e, "src_endpoint.port", o, "id.orig_p")
		e.Set("dst_endpoint.ip", str(o, "id.resp_h"))
		setNum(e, "dst_endpoint.port", o, "id.resp_p")
		e.Set("connection_info.uid", str(o, "uid"))
		if proto := str(o, "proto"); proto != "" {
			e.Set("connection_info.protocol_name", proto)
		}
		e.Set("metadata.uid", str(o, "uid"))
		e.Set("metadata.log_name", path)
	}
	var e ocsf.Event
	switch path {
	case "conn":
		e = ocsf.New(ocsf.NetworkActivity, ocsf.NetworkTraffic, "Traffic", ts, zeekProduct)
		endpoints(e)
		setNum(e, "traffic.bytes_out", o, "orig_bytes")
		setNum(e, "traffic.bytes_in", o, "resp_bytes")
		setNum(e, "traffic.packets_out", o, "orig_pkts")
		setNum(e, "traffic.packets_in", o, "resp_pkts")
		if d, ok := o["duration"].(json.Number); ok {
			if f, err := d.Float64(); err == nil {
				e["duration"] = int64(f * 1000)
			}
		}
		e.Set("app_name", str(o, "service"))
	case "ssl":
		e = ocsf.New(ocsf.NetworkActivity, ocsf.NetworkOpen, "Open", ts, zeekProduct)
		endpoints(e)
		e.Set("tls.version", str(o, "version"))
		e.Set("tls.cipher", str(o, "cipher"))
		e.Set("tls.sni", str(o, "server_name"))
		if est, ok := o["established"].(bool); ok && !est {
			e.SetStatus(ocsf.StatusFailure)
		}
	case "dns":
		act, name := ocsf.DNSQuery, "Query"
		if _, ok := o["rcode"]; ok {
			act, name = ocsf.DNSResponse, "Response"
		}
		e = ocsf.New(ocsf.DNSActivity, act, name, ts, zeekProduct)
		endpoints(e)
		e.Set("query.hostname", str(o, "query"))
		e.Set("query.type", str(o, "qtype_name"))
		e.Set("query.class", str(o, "qclass_name"))
		setNum(e, "query.uid", o, "trans_id")
		setNum(e, "rcode_id", o, "rcode")
		e.Set("rcode", str(o, "rcode_name"))
		if ans, ok := o["answers"].([]any); ok {
			var answers []map[string]any
			for _, a := range ans {
				if s, ok := a.(string); ok {
					answers = append(answers, map[string]any{"rdata": s})
				}
			}
			if len(answers) > 0 {
				e["answers"] = answers
			}
		}
	case "http":
		method := str(o, "method")
		act, name := httpActivity(method)
		e = ocsf.New(ocsf.HTTPActivity, act, name, ts, zeekProduct)
		endpoints(e)
		e.Set("http_request.http_method", method)
		e.Set("http_request.url.hostname", str(o, "host"))
		e.Set("http_request.url.path", str(o, "uri"))
		if h, u := str(o, "host"), str(o, "uri"); h != "" {
			e.Set("http_request.url.url_string", "http://"+h+u)
		}
		e.Set("http_request.user_agent", str(o, "user_agent"))
		e.Set("http_request.referrer", str(o, "referrer"))
		e.Set("http_request.version", str(o, "version"))
		setNum(e, "http_response.code", o, "status_code")
		e.Set("http_response.message", str(o, "status_msg"))
		setNum(e, "traffic.bytes_out", o, "request_body_len")
		setNum(e, "traffic.bytes_in", o, "response_body_len")
	default:
		return fail(SourceZeek, raw, "zeek: log %q is not mapped (conn, dns, http, ssl are)", path)
	}
	e["unmapped"] = o
	return finish(SourceZeek, host, raw, e)
}
