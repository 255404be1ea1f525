package parse

import (
	"encoding/json"
	"path"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Zeek JSON logs (LogAscii::use_json=T; `_path` names the log when
// several are mixed, as json-streaming-logs and most shippers add it,
// else it is guessed from the fields). Field names come in two styles:
// Zeek's own, with dots (id.orig_h), and with underscores (id_orig_h), as
// several public datasets and shippers write them; both are read, and the
// record is kept as it came in unmapped. Every log becomes an event, with
// the log's name in metadata.log_name (which routes it to Sigma's zeek
// service of that name):
//
//	conn, ssl, dce_rpc, rdp, ssh, files (with endpoints) ... -> Network Activity
//	dns -> DNS Activity; http -> HTTP Activity
//	kerberos, ntlm (with a user) -> Authentication
//	smb_files, smb_mapping -> SMB Activity
//	x509, notice, weird, and logs without endpoints -> Base Event
//
// The originator (id.orig_h) keys the event: it is the host the activity
// is about. A record without ts is stamped with the receive time.

var zeekProduct = ocsf.Product{Name: "Zeek", Vendor: "Zeek"}

// zeekRecord reads a record in either field style, or with id nested as
// some shippers write it ({"id": {"orig_h": ...}}).
type zeekRecord map[string]any

func (o zeekRecord) get(k string) any {
	if v, ok := o[k]; ok {
		return v
	}
	if strings.Contains(k, ".") {
		if v, ok := o[strings.ReplaceAll(k, ".", "_")]; ok {
			return v
		}
		parent, child, _ := strings.Cut(k, ".")
		if m, ok := o[parent].(map[string]any); ok {
			return m[child]
		}
	}
	return nil
}

func (o zeekRecord) str(k string) string {
	switch v := o.get(k).(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

func (o zeekRecord) has(k string) bool { return o.get(k) != nil }

func (o zeekRecord) setNum(e ocsf.Event, path, k string) {
	setNum(e, path, map[string]any{"v": o.get(k)}, "v")
}

// zeekPath names the log a record came from, guessing from its fields
// when `_path` is missing.
func zeekPath(o zeekRecord) string {
	if p := o.str("_path"); p != "" {
		return p
	}
	switch {
	case o.has("query") || o.has("qtype_name"):
		return "dns"
	case o.has("method") || o.has("status_code"):
		return "http"
	case o.has("cipher") || o.has("server_name") || o.has("ssl_history"):
		return "ssl"
	case o.has("certificate.serial") || o.has("certificate.subject"):
		return "x509"
	case o.has("request_type") && (o.has("client") || o.has("service")):
		return "kerberos"
	case o.has("endpoint") && o.has("operation"):
		return "dce_rpc"
	case o.has("fuid") && o.has("action") && o.has("path"):
		return "smb_files"
	case o.has("share_type"):
		return "smb_mapping"
	case o.has("fuid") || o.has("mime_type") || o.has("seen_bytes"):
		return "files"
	case o.has("note"):
		return "notice"
	case o.has("cookie") && o.has("security_protocol"):
		return "rdp"
	case o.has("auth_success") || o.has("auth_attempts"):
		return "ssh"
	case o.has("name") && (o.has("notice") || o.has("peer")):
		return "weird"
	case o.has("conn_state") || o.has("proto"):
		return "conn"
	}
	return ""
}

// zeekTime reads ts: epoch seconds (the default) or ISO 8601
// (LogAscii::json_timestamps=JSON::TS_ISO8601).
func zeekTime(o zeekRecord) (time.Time, bool) {
	for _, k := range []string{"ts", "@timestamp"} {
		switch v := o.get(k).(type) {
		case json.Number:
			if f, err := v.Float64(); err == nil {
				return time.UnixMilli(int64(f*1000 + 0.5)).UTC(), true
			}
		case string:
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// Zeek maps one Zeek log record; host keys it when it names no
// originator.
func (p *Parsers) Zeek(raw map[string]any, doc []byte, host string) Result {
	o := zeekRecord(raw)
	log := zeekPath(o)
	ts, ok := zeekTime(o)
	if !ok {
		ts = p.now()
	}
	orig, resp := o.str("id.orig_h"), o.str("id.resp_h")
	if log == "files" && orig == "" {
		// files.log before Zeek 5 names the hosts a file went between.
		orig, resp = first(o.get("tx_hosts")), first(o.get("rx_hosts"))
	}
	if orig != "" {
		host = orig
	}
	endpoints := func(e ocsf.Event) {
		e.Set("src_endpoint.ip", orig)
		o.setNum(e, "src_endpoint.port", "id.orig_p")
		e.Set("dst_endpoint.ip", resp)
		o.setNum(e, "dst_endpoint.port", "id.resp_p")
		e.Set("connection_info.uid", o.str("uid"))
		e.Set("connection_info.protocol_name", o.str("proto"))
	}
	hasEndpoints := orig != "" || resp != ""
	other := func(c ocsf.Class) ocsf.Event {
		e := ocsf.New(c, ocsf.ActivityOther, "Other", ts, zeekProduct)
		e["activity_name"] = log
		e["type_name"] = c.Name + ": " + log
		return e
	}
	var e ocsf.Event
	switch {
	case log == "conn":
		e = ocsf.New(ocsf.NetworkActivity, ocsf.NetworkTraffic, "Traffic", ts, zeekProduct)
		endpoints(e)
		o.setNum(e, "traffic.bytes_out", "orig_bytes")
		o.setNum(e, "traffic.bytes_in", "resp_bytes")
		o.setNum(e, "traffic.packets_out", "orig_pkts")
		o.setNum(e, "traffic.packets_in", "resp_pkts")
		if d, ok := o.get("duration").(json.Number); ok {
			if f, err := d.Float64(); err == nil {
				e["duration"] = int64(f * 1000)
			}
		}
		e.Set("app_name", o.str("service"))
	case log == "ssl":
		e = ocsf.New(ocsf.NetworkActivity, ocsf.NetworkOpen, "Open", ts, zeekProduct)
		endpoints(e)
		e.Set("tls.version", o.str("version"))
		e.Set("tls.cipher", o.str("cipher"))
		e.Set("tls.sni", o.str("server_name"))
		if est, ok := o.get("established").(bool); ok && !est {
			e.SetStatus(ocsf.StatusFailure)
		}
	case log == "dns" && o.str("query") != "":
		act, name := ocsf.DNSQuery, "Query"
		if o.has("rcode") {
			act, name = ocsf.DNSResponse, "Response"
		}
		e = ocsf.New(ocsf.DNSActivity, act, name, ts, zeekProduct)
		endpoints(e)
		e.Set("query.hostname", o.str("query"))
		e.Set("query.type", o.str("qtype_name"))
		e.Set("query.class", o.str("qclass_name"))
		o.setNum(e, "query.uid", "trans_id")
		o.setNum(e, "rcode_id", "rcode")
		e.Set("rcode", o.str("rcode_name"))
		if ans, ok := o.get("answers").([]any); ok {
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
	case log == "http" && hasEndpoints:
		method := o.str("method")
		act, name := httpActivity(method)
		e = ocsf.New(ocsf.HTTPActivity, act, name, ts, zeekProduct)
		endpoints(e)
		e.Set("http_request.http_method", method)
		setURL(e, "http", o.str("host"), o.str("uri"))
		e.Set("http_request.user_agent", o.str("user_agent"))
		e.Set("http_request.referrer", o.str("referrer"))
		e.Set("http_request.version", o.str("version"))
		o.setNum(e, "http_response.code", "status_code")
		e.Set("http_response.message", o.str("status_msg"))
		o.setNum(e, "traffic.bytes_out", "request_body_len")
		o.setNum(e, "traffic.bytes_in", "response_body_len")
	case (log == "kerberos" && o.str("client") != "") || (log == "ntlm" && o.str("username") != ""):
		e = ocsf.New(ocsf.Authentication, ocsf.AuthLogon, "Logon", ts, zeekProduct)
		endpoints(e)
		if log == "kerberos" {
			// Zeek writes the client principal as name/REALM.
			client := o.str("client")
			sep := strings.LastIndexAny(client, "/@")
			user, realm := client, ""
			if sep > 0 {
				user, realm = client[:sep], client[sep+1:]
			}
			e.Set("user.name", user)
			e.Set("user.domain", realm)
			e.Set("auth_protocol", "Kerberos")
			e.Set("service.name", o.str("service"))
		} else {
			e.Set("user.name", o.str("username"))
			e.Set("user.domain", o.str("domainname"))
			e.Set("auth_protocol", "NTLM")
			e.Set("src_endpoint.hostname", o.str("hostname"))
			e.Set("service.name", o.str("server_nb_computer_name"))
		}
		e.Set("dst_endpoint.ip", resp) // the at-least-one group
		if s, ok := o.get("success").(bool); ok {
			if s {
				e.SetStatus(ocsf.StatusSuccess)
			} else {
				e.SetStatus(ocsf.StatusFailure)
			}
		}
	case (log == "smb_files" || log == "smb_mapping") && hasEndpoints:
		act, name := ocsf.ActivityOther, o.str("action")
		if name == "SMB::FILE_OPEN" {
			act = ocsf.SMBFileOpen
		}
		e = ocsf.New(ocsf.SMBActivity, act, name, ts, zeekProduct)
		if act == ocsf.ActivityOther {
			e["activity_name"], e["type_name"] = log, ocsf.SMBActivity.Name+": "+log
		}
		endpoints(e)
		e.Set("share", o.str("path"))
		e.Set("share_type", o.str("share_type"))
		if n := o.str("name"); n != "" {
			e.Set("file.name", path.Base(strings.ReplaceAll(n, `\`, "/")))
			e.Set("file.path", n)
		}
	case log == "x509" || log == "notice" || log == "weird" || !hasEndpoints:
		e = ocsf.New(ocsf.BaseEvent, ocsf.ActivityOther, "Other", ts, zeekProduct)
		switch log {
		case "notice":
			e.Set("message", o.str("msg"))
			e.Set("metadata.event_code", o.str("note"))
		case "weird":
			e.Set("message", o.str("name"))
		case "x509":
			e.Set("message", o.str("certificate.subject"))
		}
	default:
		// dce_rpc, rdp, ssh, files, dhcp ...: connections of a protocol
		// OCSF has no class of Vigil's for.
		e = other(ocsf.NetworkActivity)
		endpoints(e)
	}
	e.Set("metadata.uid", o.str("uid"))
	e.Set("metadata.log_name", log)
	e["unmapped"] = raw
	return finish(SourceZeek, host, doc, e)
}

// setURL fills http_request.url from a request's host and target
// (path?query), as Zeek and web server logs give them.
func setURL(e ocsf.Event, scheme, host, target string) {
	p, q, _ := strings.Cut(target, "?")
	e.Set("http_request.url.hostname", host)
	e.Set("http_request.url.path", p)
	e.Set("http_request.url.query_string", q)
	if host != "" {
		e.Set("http_request.url.url_string", scheme+"://"+host+target)
	} else {
		e.Set("http_request.url.url_string", target)
	}
}

// first returns the first string of a JSON list.
func first(v any) string {
	if l, ok := v.([]any); ok && len(l) > 0 {
		s, _ := l[0].(string)
		return s
	}
	return ""
}
