package parse

import (
	"encoding/json"
	"net"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Cloud audit logs as their platforms export them:
//
//   - Azure: Azure Monitor diagnostic records (Event Hub or storage
//     export, {"records": [...]} or one record; category SignInLogs,
//     AuditLogs, an Activity Log category, UserRiskEvents ...) and
//     Microsoft Graph riskDetection objects;
//   - Google Cloud: Cloud Audit Logs LogEntry records (protoPayload of
//     type AuditLog), Google Workspace's among them (serviceName
//     admin.googleapis.com, login.googleapis.com);
//   - Microsoft 365: Office 365 Management Activity API records.
//
// Sign-ins become Authentication, calls with an actor and a source address
// API Activity, the rest Base Events. metadata.log_name is the Sigma
// service the record belongs to (signinlogs, gcp.audit, exchange ...),
// which routes it; the record stays whole in unmapped.

var (
	azureProduct     = ocsf.Product{Name: "Azure", Vendor: "Microsoft"}
	gcpProduct       = ocsf.Product{Name: "Google Cloud", Vendor: "Google"}
	workspaceProduct = ocsf.Product{Name: "Google Workspace", Vendor: "Google"}
	m365Product      = ocsf.Product{Name: "Microsoft 365", Vendor: "Microsoft"}
)

// lookup reads a dotted path of nested objects.
func lookup(o map[string]any, p string) any {
	var cur any = o
	for _, k := range strings.Split(p, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func pstr(o map[string]any, p string) string {
	switch v := lookup(o, p).(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// firstOf returns the first non-empty string of paths.
func firstOf(o map[string]any, paths ...string) string {
	for _, p := range paths {
		if s := pstr(o, p); s != "" {
			return s
		}
	}
	return ""
}

// ipOf keeps the address of "addr", "addr:port" or "[v6]:port".
func ipOf(s string) string {
	if net.ParseIP(s) != nil {
		return s
	}
	if h, _, err := net.SplitHostPort(s); err == nil && net.ParseIP(h) != nil {
		return h
	}
	return ""
}

// records expands a document holding a list of records under key (Azure's
// "records") into one result per record.
func (p *Parsers) records(o map[string]any, raw []byte, key string, one func(map[string]any, []byte) Result) []Result {
	list, ok := o[key].([]any)
	if !ok {
		return []Result{one(o, raw)}
	}
	var out []Result
	for _, r := range list {
		rec, ok := r.(map[string]any)
		b, _ := json.Marshal(r)
		if !ok {
			out = append(out, fail(SourceAzure, b, "record is not an object"))
			continue
		}
		out = append(out, one(rec, b))
	}
	return out
}

// apiOrBase builds API Activity when the call has an actor and an address
// (what the class requires), else a Base Event.
func (p *Parsers) apiOrBase(source string, product ocsf.Product, ts time.Time, actor, op, service, ip string) ocsf.Event {
	if actor == "" || op == "" || ip == "" {
		e := ocsf.New(ocsf.BaseEvent, ocsf.ActivityOther, "Other", ts, product)
		e.Set("message", op)
		return e
	}
	act, name := verbActivity(op)
	e := ocsf.New(ocsf.APIActivity, act, name, ts, product)
	e.Set("actor.user.name", actor)
	e.Set("api.operation", op)
	e.Set("api.service.name", service)
	e.Set("src_endpoint.ip", ip)
	return e
}

// azureServices maps a diagnostic record's category to Sigma's azure
// service.
func azureService(category string) string {
	switch strings.ToLower(category) {
	case "signinlogs", "noninteractiveusersigninlogs", "serviceprincipalsigninlogs", "managedidentitysigninlogs":
		return "signinlogs"
	case "auditlogs":
		return "auditlogs"
	case "userriskevents", "riskyusers", "serviceprincipalriskevents", "riskyserviceprincipals":
		return "riskdetection"
	case "administrative", "security", "servicehealth", "alert", "recommendation", "policy", "autoscale", "resourcehealth":
		return "activitylogs"
	}
	return ""
}

// Azure maps a diagnostic export document or a Graph riskDetection.
func (p *Parsers) Azure(o map[string]any, raw []byte, host string) []Result {
	return p.records(o, raw, "records", func(r map[string]any, b []byte) Result { return p.azureRecord(r, b, host) })
}

func (p *Parsers) azureRecord(o map[string]any, raw []byte, host string) Result {
	service := azureService(str(o, "category"))
	if service == "" && str(o, "riskEventType") != "" {
		service = "riskdetection" // a Graph riskDetection
	}
	ts, ok := docTime(o)
	if !ok {
		if t, err := time.Parse(time.RFC3339Nano, str(o, "detectedDateTime")); err == nil {
			ts = t
		} else {
			ts = p.now()
		}
	}
	user := firstOf(o, "properties.userPrincipalName", "userPrincipalName", "properties.initiatedBy.user.userPrincipalName",
		"identity.claims.name", "caller", "identity", "properties.initiatedBy.app.displayName")
	ip := ipOf(firstOf(o, "callerIpAddress", "properties.ipAddress", "ipAddress", "properties.initiatedBy.user.ipAddress"))
	if tenant := firstOf(o, "tenantId", "properties.tenantId"); tenant != "" {
		host = tenant // one tenant's records in order
	}
	op := firstOf(o, "operationName", "properties.activityDisplayName", "riskEventType")
	var e ocsf.Event
	switch {
	case service == "signinlogs" && user != "":
		e = ocsf.New(ocsf.Authentication, ocsf.AuthLogon, "Logon", ts, azureProduct)
		e.Set("user.name", user)
		e.Set("service.name", firstOf(o, "properties.appDisplayName", "properties.resourceDisplayName"))
		e.Set("dst_endpoint.svc_name", "Microsoft Entra ID")
		e.Set("src_endpoint.ip", ip)
		code := firstOf(o, "resultType", "properties.status.errorCode")
		if code == "0" {
			e.SetStatus(ocsf.StatusSuccess)
		} else if code != "" {
			e.SetStatus(ocsf.StatusFailure)
			e.Set("status_code", code)
			e.Set("status_detail", firstOf(o, "resultDescription", "properties.status.failureReason"))
		}
	case service == "auditlogs" || service == "activitylogs":
		e = p.apiOrBase(SourceAzure, azureProduct, ts, user, op, firstOf(o, "properties.loggedByService", "resourceProviderName.value", "properties.resourceProviderName"), ip)
		if st := strings.ToLower(firstOf(o, "resultType", "properties.result", "resultSignature")); st == "success" || st == "succeeded" {
			e.SetStatus(ocsf.StatusSuccess)
		} else if st == "failure" || st == "failed" {
			e.SetStatus(ocsf.StatusFailure)
		}
	default:
		e = ocsf.New(ocsf.BaseEvent, ocsf.ActivityOther, "Other", ts, azureProduct)
		e.Set("message", op)
	}
	e.Set("metadata.log_name", service)
	e.Set("metadata.event_code", op)
	e.Set("metadata.uid", firstOf(o, "correlationId", "id", "properties.id"))
	e["unmapped"] = o
	return finish(SourceAzure, host, raw, e)
}

// GCP maps a Cloud Audit Logs LogEntry (Google Workspace's too).
func (p *Parsers) GCP(o map[string]any, raw []byte, host string) Result {
	svc := pstr(o, "protoPayload.serviceName")
	product, logName := gcpProduct, "gcp.audit"
	switch svc {
	case "admin.googleapis.com":
		product, logName = workspaceProduct, "admin"
	case "login.googleapis.com":
		product, logName = workspaceProduct, "login"
	}
	ts, ok := docTime(o)
	if !ok {
		ts = p.now()
	}
	if proj := pstr(o, "resource.labels.project_id"); proj != "" {
		host = proj
	}
	user := pstr(o, "protoPayload.authenticationInfo.principalEmail")
	op := pstr(o, "protoPayload.methodName")
	ip := ipOf(pstr(o, "protoPayload.requestMetadata.callerIp"))
	var e ocsf.Event
	if logName == "login" && user != "" {
		e = ocsf.New(ocsf.Authentication, ocsf.AuthLogon, "Logon", ts, product)
		e.Set("user.name", user)
		e.Set("service.name", svc)
		e.Set("src_endpoint.ip", ip)
	} else {
		e = p.apiOrBase(SourceGCP, product, ts, user, op, svc, ip)
	}
	if code := pstr(o, "protoPayload.status.code"); code != "" && code != "0" {
		e.SetStatus(ocsf.StatusFailure)
		e.Set("status_code", code)
		e.Set("status_detail", pstr(o, "protoPayload.status.message"))
	}
	if product == gcpProduct && e.ClassUID() == ocsf.APIActivity.UID {
		e.Set("cloud.provider", "GCP")
		e.Set("cloud.project_uid", pstr(o, "resource.labels.project_id"))
		e.Set("metadata.profiles", []any{"cloud"})
	}
	e.Set("metadata.log_name", logName)
	e.Set("metadata.event_code", op)
	e.Set("metadata.uid", str(o, "insertId"))
	e["unmapped"] = o
	return finish(SourceGCP, host, raw, e)
}

// m365Service maps a Management Activity record to Sigma's m365 service.
func m365Service(o map[string]any) string {
	switch str(o, "Workload") {
	case "Exchange":
		return "exchange"
	case "SecurityComplianceCenter":
		return "threat_management"
	case "ThreatIntelligence", "Microsoft365Defender":
		return "threat_detection"
	}
	return "audit"
}

// M365 maps an Office 365 Management Activity API record.
func (p *Parsers) M365(o map[string]any, raw []byte, host string) Result {
	ts, err := time.Parse("2006-01-02T15:04:05", strings.TrimSuffix(str(o, "CreationTime"), "Z"))
	if err != nil {
		ts = p.now()
	}
	if org := str(o, "OrganizationId"); org != "" {
		host = org
	}
	user, op, workload := str(o, "UserId"), str(o, "Operation"), str(o, "Workload")
	ip := ipOf(firstOf(o, "ClientIP", "ClientIPAddress", "ActorIpAddress"))
	var e ocsf.Event
	if (op == "UserLoggedIn" || op == "UserLoginFailed") && user != "" {
		e = ocsf.New(ocsf.Authentication, ocsf.AuthLogon, "Logon", ts, m365Product)
		e.Set("user.name", user)
		e.Set("service.name", workload)
		e.Set("src_endpoint.ip", ip)
		if op == "UserLoggedIn" {
			e.SetStatus(ocsf.StatusSuccess)
		} else {
			e.SetStatus(ocsf.StatusFailure)
		}
	} else {
		e = p.apiOrBase(SourceM365, m365Product, ts, user, op, workload, ip)
	}
	e.Set("metadata.log_name", m365Service(o))
	e.Set("metadata.event_code", op)
	e.Set("metadata.uid", str(o, "Id"))
	e["unmapped"] = o
	return finish(SourceM365, host, raw, e)
}
