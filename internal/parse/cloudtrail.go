package parse

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// AWS CloudTrail events, single or in the {"Records": [...]} form of the
// files CloudTrail delivers to S3. ConsoleLogin becomes Authentication;
// every other call becomes API Activity. The account the event was
// delivered to (recipientAccountId) keys it: CloudTrail has no host, and
// an account's calls staying in order is what detections need.

var awsProduct = ocsf.Product{Name: "CloudTrail", Vendor: "AWS"}

// CloudTrail maps a document holding one event or a Records array.
func (p *Parsers) CloudTrail(o map[string]any, raw []byte) []Result {
	if _, ok := o["Records"]; !ok {
		return []Result{p.cloudTrailEvent(o, raw)}
	}
	var file struct {
		Records []json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return []Result{fail(SourceCloudTrail, raw, "cloudtrail: Records is not an array of events: %v", err)}
	}
	out := make([]Result, 0, len(file.Records))
	for _, rec := range file.Records {
		var ev map[string]any
		dec := json.NewDecoder(bytes.NewReader(rec))
		dec.UseNumber()
		if err := dec.Decode(&ev); err != nil || ev == nil {
			out = append(out, fail(SourceCloudTrail, rec, "cloudtrail: record is not an object"))
			continue
		}
		out = append(out, p.cloudTrailEvent(ev, rec))
	}
	return out
}

// apiActivity classifies an API call by its verb.
func apiActivity(name string, readOnly bool) (int, string) {
	has := func(prefixes ...string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	switch {
	case readOnly || has("Get", "List", "Describe", "Lookup", "Head", "Search", "Select", "BatchGet"):
		return ocsf.APIRead, "Read"
	case has("Create", "Put", "Run", "Add", "Register", "Import", "Allocate", "Issue", "Generate"):
		return ocsf.APICreate, "Create"
	case has("Update", "Modify", "Set", "Attach", "Associate", "Enable", "Change", "Reset", "Tag", "Start", "Stop", "Reboot", "Authorize", "Replace"):
		return ocsf.APIUpdate, "Update"
	case has("Delete", "Remove", "Detach", "Disassociate", "Disable", "Terminate", "Deregister", "Revoke", "Untag", "Release"):
		return ocsf.APIDelete, "Delete"
	}
	return ocsf.ActivityOther, "Other"
}

func (p *Parsers) cloudTrailEvent(o map[string]any, raw []byte) Result {
	name, source := str(o, "eventName"), str(o, "eventSource")
	uid := obj(o, "userIdentity")
	account := str(o, "recipientAccountId")
	if account == "" {
		account = str(uid, "accountId")
	}
	if name == "" || source == "" {
		// Not an API call CloudTrail describes (a digest, an insight):
		// still CloudTrail's.
		return p.jsonBase(SourceCloudTrail, o, raw, account, awsProduct, "")
	}
	ts, err := time.Parse(time.RFC3339, str(o, "eventTime"))
	if err != nil {
		ts = p.now()
	}
	srcIP := str(o, "sourceIPAddress")
	setSrc := func(e ocsf.Event) {
		// AWS services calling on a user's behalf appear as a service name
		// ("ec2.amazonaws.com"), not an address.
		if net.ParseIP(srcIP) != nil {
			e.Set("src_endpoint.ip", srcIP)
		} else {
			e.Set("src_endpoint.domain", srcIP)
		}
	}
	userName := str(uid, "userName")
	if userName == "" {
		if sess := obj(obj(uid, "sessionContext"), "sessionIssuer"); sess != nil {
			userName = str(sess, "userName")
		}
	}
	if userName == "" {
		userName = str(uid, "principalId")
	}
	var e ocsf.Event
	if name == "ConsoleLogin" {
		e = ocsf.New(ocsf.Authentication, ocsf.AuthLogon, "Logon", ts, awsProduct)
		e.Set("user.name", userName)
		e.Set("user.uid", str(uid, "arn"))
		e.Set("user.type", str(uid, "type"))
		e.Set("user.account.uid", str(uid, "accountId"))
		if str(obj(o, "responseElements"), "ConsoleLogin") == "Success" {
			e.SetStatus(ocsf.StatusSuccess)
		} else {
			e.SetStatus(ocsf.StatusFailure)
			e.SetSeverity(ocsf.SeverityLow)
			e.Set("status_detail", str(o, "errorMessage"))
		}
		if mfa := str(obj(o, "additionalEventData"), "MFAUsed"); mfa != "" {
			e["is_mfa"] = mfa == "Yes"
		}
		e.Set("service.name", source)
		e.Set("dst_endpoint.svc_name", source)
		e.Set("cloud.provider", "AWS")
		e.Set("cloud.region", str(o, "awsRegion"))
	} else {
		ro := str(o, "readOnly") == "true"
		act, actName := apiActivity(name, ro)
		e = ocsf.New(ocsf.APIActivity, act, actName, ts, awsProduct)
		e.Set("actor.user.name", userName)
		e.Set("actor.user.uid", str(uid, "arn"))
		e.Set("actor.user.type", str(uid, "type"))
		e.Set("actor.user.credential_uid", str(uid, "accessKeyId"))
		e.Set("actor.user.account.uid", str(uid, "accountId"))
		e.Set("actor.invoked_by", str(uid, "invokedBy"))
		e.Set("api.operation", name)
		e.Set("api.service.name", source)
		e.Set("api.request.uid", str(o, "requestID"))
		e.Set("cloud.provider", "AWS")
		e.Set("cloud.region", str(o, "awsRegion"))
		if code := str(o, "errorCode"); code != "" {
			e.SetStatus(ocsf.StatusFailure)
			e.Set("status_code", code)
			e.Set("status_detail", str(o, "errorMessage"))
		} else {
			e.SetStatus(ocsf.StatusSuccess)
		}
	}
	setSrc(e)
	e.Set("http_request.user_agent", str(o, "userAgent"))
	e.Set("metadata.uid", str(o, "eventID"))
	e.Set("metadata.product.version", str(o, "eventVersion"))
	e.Set("metadata.event_code", name)
	// The cloud profile: events carry the cloud object (provider, region).
	e.Set("metadata.profiles", []any{"cloud"})
	e.Set("cloud.account.uid", account)
	e["unmapped"] = o
	return finish(SourceCloudTrail, account, raw, e)
}
