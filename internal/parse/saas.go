package parse

import (
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// SaaS audit logs: Okta's System Log and GitHub's audit log, as their
// APIs and log streams deliver them (one JSON object per event). Logons
// become Authentication, other calls with an actor and a source address
// API Activity, the rest Base Events; the record stays whole in
// unmapped, where Sigma's okta and github rules find their fields
// (eventType, displayMessage, actor.alternateId; action).

var (
	oktaProduct   = ocsf.Product{Name: "Okta", Vendor: "Okta"}
	githubProduct = ocsf.Product{Name: "GitHub", Vendor: "GitHub"}
)

// verbActivity classifies an operation name by its verbs.
func verbActivity(op string) (int, string) {
	op = strings.ToLower(op)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(op, w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("delete", "destroy", "remove", "deactivate", "revoke"):
		return ocsf.APIDelete, "Delete"
	case has("create", "add", "grant", "activate", "import"):
		return ocsf.APICreate, "Create"
	case has("update", "change", "rename", "reset", "modify", "set", "enable", "disable", "transfer"):
		return ocsf.APIUpdate, "Update"
	case has("read", "list", "get", "view", "access", "download", "clone", "fetch"):
		return ocsf.APIRead, "Read"
	}
	return ocsf.ActivityOther, "Other"
}

// Okta maps one System Log event.
func (p *Parsers) Okta(o map[string]any, raw []byte, host string) Result {
	et := str(o, "eventType")
	actor, client, outcome := obj(o, "actor"), obj(o, "client"), obj(o, "outcome")
	user := str(actor, "alternateId")
	if user == "" {
		user = str(actor, "displayName")
	}
	if user != "" {
		host = user // one user's events in order: what Okta's detections follow
	}
	ip := str(client, "ipAddress")
	if et == "" {
		return p.jsonBase(SourceOkta, o, raw, host, oktaProduct, "")
	}
	ts, err := time.Parse(time.RFC3339Nano, str(o, "published"))
	if err != nil {
		ts = p.now()
	}
	var e ocsf.Event
	switch {
	case et == "user.session.start" || strings.HasPrefix(et, "user.authentication."):
		e = ocsf.New(ocsf.Authentication, ocsf.AuthLogon, "Logon", ts, oktaProduct)
		e.Set("user.name", user)
		e.Set("user.uid", str(actor, "id"))
		e.Set("service.name", "Okta")
		e.Set("src_endpoint.ip", ip)
	case et == "user.session.end":
		e = ocsf.New(ocsf.Authentication, ocsf.AuthLogoff, "Logoff", ts, oktaProduct)
		e.Set("user.name", user)
		e.Set("service.name", "Okta")
		e.Set("src_endpoint.ip", ip)
	case user != "" && ip != "":
		act, name := verbActivity(et)
		e = ocsf.New(ocsf.APIActivity, act, name, ts, oktaProduct)
		e.Set("actor.user.name", user)
		e.Set("actor.user.uid", str(actor, "id"))
		e.Set("api.operation", et)
		e.Set("api.service.name", "Okta")
		e.Set("src_endpoint.ip", ip)
	default:
		return p.jsonBase(SourceOkta, o, raw, host, oktaProduct, "")
	}
	switch strings.ToUpper(str(outcome, "result")) {
	case "SUCCESS", "ALLOW":
		e.SetStatus(ocsf.StatusSuccess)
	case "FAILURE", "DENY":
		e.SetStatus(ocsf.StatusFailure)
		e.Set("status_detail", str(outcome, "reason"))
	}
	switch strings.ToUpper(str(o, "severity")) {
	case "WARN":
		e.SetSeverity(ocsf.SeverityLow)
	case "ERROR":
		e.SetSeverity(ocsf.SeverityMedium)
	}
	e.Set("message", str(o, "displayMessage"))
	e.Set("http_request.user_agent", str(obj(client, "userAgent"), "rawUserAgent"))
	e.Set("metadata.uid", str(o, "uuid"))
	e.Set("metadata.event_code", et)
	e["unmapped"] = o
	return finish(SourceOkta, host, raw, e)
}

// GitHub maps one audit log event (REST API or audit log streaming).
func (p *Parsers) GitHub(o map[string]any, raw []byte, host string) Result {
	action, actor, ip := str(o, "action"), str(o, "actor"), str(o, "actor_ip")
	for _, k := range []string{"org", "business", "actor"} {
		if v := str(o, k); v != "" {
			host = v // an organisation's events in order
			break
		}
	}
	ts, ok := docTime(o)
	if !ok {
		ts = p.now()
	}
	if action == "" || actor == "" || ip == "" {
		// API Activity needs who and from where; without them the event
		// is kept generic.
		r := p.jsonBase(SourceGitHub, o, raw, host, githubProduct, "audit")
		if r.Event != nil {
			r.Event.Set("message", action)
			r.Event.Set("metadata.event_code", action)
		}
		return r
	}
	_, verb, _ := strings.Cut(action, ".")
	act, name := verbActivity(verb)
	e := ocsf.New(ocsf.APIActivity, act, name, ts, githubProduct)
	e.Set("actor.user.name", actor)
	e.Set("api.operation", action)
	e.Set("api.service.name", "GitHub")
	e.Set("src_endpoint.ip", ip)
	e.Set("http_request.user_agent", str(o, "user_agent"))
	e.Set("metadata.uid", str(o, "_document_id"))
	e.Set("metadata.log_name", "audit")
	e.Set("metadata.event_code", action)
	e["unmapped"] = o
	return finish(SourceGitHub, host, raw, e)
}
