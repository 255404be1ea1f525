// Package ocsf builds OCSF 1.x events and checks them against the
// attributes each class requires.
//
// Events are plain JSON objects (map[string]any) rather than typed structs:
// OCSF classes are wide and mostly optional, parsers fill a handful of
// attributes each, and a map marshals with sorted keys, which keeps golden
// files stable without extra code.
package ocsf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SchemaVersion is the OCSF version the events claim in metadata.version.
const SchemaVersion = "1.1.0"

// Class is one OCSF event class.
type Class struct {
	UID          int
	Name         string
	CategoryUID  int
	CategoryName string
	// Topic is the default topic events of this class are written to.
	Topic string
}

// The classes Vigil's ingest produces.
var (
	Authentication  = Class{3002, "Authentication", 3, "Identity & Access Management", "ocsf.authentication"}
	ProcessActivity = Class{1007, "Process Activity", 1, "System Activity", "ocsf.process_activity"}
	DNSActivity     = Class{4003, "DNS Activity", 4, "Network Activity", "ocsf.dns_activity"}
	NetworkActivity = Class{4001, "Network Activity", 4, "Network Activity", "ocsf.network_activity"}
	HTTPActivity    = Class{4002, "HTTP Activity", 4, "Network Activity", "ocsf.http_activity"}
	APIActivity     = Class{6003, "API Activity", 6, "Application Activity", "ocsf.api_activity"}
	SMBActivity     = Class{4006, "SMB Activity", 4, "Network Activity", "ocsf.smb_activity"}
	// BaseEvent (class_uid 0, category Uncategorized) is OCSF's generic
	// event: input that parses but fits no specific class (a log line no
	// parser maps, a JSON document of a source Vigil does not know), so
	// that rules still see it.
	BaseEvent = Class{0, "Base Event", 0, "Uncategorized", "ocsf.base_event"}
)

// DetectionFinding (2004) is the class of the alerts `vigil detect`
// writes; it is not an ingest class, so Classes does not list it.
var DetectionFinding = Class{2004, "Detection Finding", 2, "Findings", "alerts"}

// Classes lists every ingest class, in a fixed order (flags, docs, tests).
func Classes() []Class {
	return []Class{Authentication, ProcessActivity, DNSActivity, NetworkActivity, HTTPActivity, APIActivity, SMBActivity, BaseEvent}
}

// ClassByUID returns the class with uid, if Vigil produces it.
func ClassByUID(uid int) (Class, bool) {
	for _, c := range append(Classes(), DetectionFinding) {
		if c.UID == uid {
			return c, true
		}
	}
	return Class{}, false
}

// Activity ids shared by several classes; class-specific ones are next to
// the class that uses them.
const (
	ActivityUnknown = 0
	ActivityOther   = 99

	// Authentication (3002).
	AuthLogon  = 1
	AuthLogoff = 2

	// SMB Activity (4006).
	SMBFileOpen = 2

	// Process Activity (1007).
	ProcessLaunch    = 1
	ProcessTerminate = 2

	// Network Activity (4001) and DNS Activity (4003).
	NetworkOpen    = 1
	NetworkTraffic = 6
	DNSQuery       = 1
	DNSResponse    = 2
	DNSTraffic     = 6

	// API Activity (6003).
	APICreate = 1
	APIRead   = 2
	APIUpdate = 3
	APIDelete = 4

	// Detection Finding (2004).
	FindingCreate = 1
)

// Severity ids (severity_id).
const (
	SeverityUnknown       = 0
	SeverityInformational = 1
	SeverityLow           = 2
	SeverityMedium        = 3
	SeverityHigh          = 4
	SeverityCritical      = 5
)

// Status ids (status_id).
const (
	StatusUnknown = 0
	StatusSuccess = 1
	StatusFailure = 2
)

var severityNames = map[int]string{0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal", 99: "Other"}

// Event is one OCSF event as a JSON object.
type Event map[string]any

// Product names the product that produced the original event
// (metadata.product, required by OCSF).
type Product struct {
	Name   string
	Vendor string
}

// New starts an event of class c with the attributes every OCSF event
// requires: class, category, activity, type_uid (class_uid*100 +
// activity_id), severity, time (epoch milliseconds) and metadata.
func New(c Class, activityID int, activityName string, t time.Time, p Product) Event {
	if activityName == "" {
		activityName = "Unknown"
		if activityID == ActivityOther {
			activityName = "Other"
		}
	}
	return Event{
		"class_uid":     c.UID,
		"class_name":    c.Name,
		"category_uid":  c.CategoryUID,
		"category_name": c.CategoryName,
		"activity_id":   activityID,
		"activity_name": activityName,
		"type_uid":      c.UID*100 + activityID,
		"type_name":     c.Name + ": " + activityName,
		"severity_id":   SeverityInformational,
		"severity":      severityNames[SeverityInformational],
		"time":          t.UnixMilli(),
		"metadata": map[string]any{
			"version": SchemaVersion,
			"product": map[string]any{"name": p.Name, "vendor_name": p.Vendor},
		},
	}
}

// SetSeverity sets severity_id and its caption.
func (e Event) SetSeverity(id int) {
	e["severity_id"] = id
	e["severity"] = severityNames[id]
}

// SetStatus sets status_id and its caption.
func (e Event) SetStatus(id int) {
	e["status_id"] = id
	switch id {
	case StatusSuccess:
		e["status"] = "Success"
	case StatusFailure:
		e["status"] = "Failure"
	default:
		e["status"] = "Unknown"
	}
}

// Set stores v at a dotted path ("src_endpoint.ip"), creating objects on
// the way. Empty strings and nil are skipped so events carry only what the
// source said.
func (e Event) Set(path string, v any) {
	switch x := v.(type) {
	case nil:
		return
	case string:
		if x == "" {
			return
		}
	}
	parts := strings.Split(path, ".")
	m := map[string]any(e)
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// Get returns the value at a dotted path.
func (e Event) Get(path string) (any, bool) {
	var cur any = map[string]any(e)
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// ClassUID returns the event's class_uid.
func (e Event) ClassUID() int {
	switch v := e["class_uid"].(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return 0
}

// baseRequired are the attributes OCSF 1.x requires of every event
// (base_event plus the required parts of metadata).
var baseRequired = []string{
	"activity_id", "category_uid", "class_uid", "severity_id", "time", "type_uid",
	"metadata", "metadata.product", "metadata.version",
}

// classRequired are the attributes each class marks "required" in the
// OCSF schema (events/<category>/<class>.json and the category event it
// extends), beyond the base event.
var classRequired = map[int][]string{
	3002: {"user"},                                                   // Authentication
	1007: {"actor", "device", "process"},                             // Process Activity; actor and device come from System Activity
	4001: {},                                                         // Network Activity: endpoints are only recommended, see atLeastOne
	4002: {},                                                         // HTTP Activity
	4003: {},                                                         // DNS Activity
	4006: {},                                                         // SMB Activity
	0:    {},                                                         // Base Event
	6003: {"actor", "api", "src_endpoint"},                           // API Activity
	2004: {"finding_info", "finding_info.uid", "finding_info.title"}, // Detection Finding
}

// atLeastOne are the schema's "at_least_one" constraints: each event must
// carry one attribute of every group.
var atLeastOne = map[int][][]string{
	3002: {{"service", "dst_endpoint"}},
	4001: {{"dst_endpoint", "src_endpoint"}},
	4002: {{"dst_endpoint", "src_endpoint"}, {"http_request", "http_response"}},
	4003: {{"dst_endpoint", "src_endpoint"}},
	4006: {{"dst_endpoint", "src_endpoint"}},
	// Vigil's floor, not the schema's: a generic event carries what it
	// was, its message or its source's fields.
	0: {{"message", "unmapped"}},
}

// vigilFloor are attributes the schema only recommends but without which
// Vigil does not publish an event of the class: a DNS event without its
// query tells a detection nothing.
var vigilFloor = map[int][]string{
	4003: {"query"},
}

// profileRequired are the attributes a profile listed in
// metadata.profiles requires (the cloud profile: cloud, and the cloud
// object's provider; the host profile, which lets a class without a
// device attribute carry one: device).
var profileRequired = map[string][]string{
	"cloud": {"cloud", "cloud.provider"},
	"host":  {"device"},
}

// Required returns the attributes an event of class uid must carry
// (without profiles and at-least-one groups).
func Required(uid int) []string {
	out := append([]string(nil), baseRequired...)
	out = append(out, classRequired[uid]...)
	return append(out, vigilFloor[uid]...)
}

func present(e Event, path string) bool {
	v, ok := e.Get(path)
	return ok && v != nil && v != ""
}

// Validate checks that e carries every required attribute of its class,
// that type_uid and category_uid agree with class and activity, and that
// time is set.
func Validate(e Event) error {
	uid := e.ClassUID()
	c, ok := ClassByUID(uid)
	if !ok {
		return fmt.Errorf("ocsf: unknown class_uid %v", e["class_uid"])
	}
	var missing []string
	for _, path := range Required(uid) {
		if !present(e, path) {
			missing = append(missing, path)
		}
	}
	if profiles, ok := e.Get("metadata.profiles"); ok {
		list, _ := profiles.([]any)
		if ss, ok := profiles.([]string); ok {
			for _, p := range ss {
				list = append(list, p)
			}
		}
		for _, p := range list {
			name, _ := p.(string)
			for _, path := range profileRequired[name] {
				if !present(e, path) {
					missing = append(missing, path+" (profile "+name+")")
				}
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("ocsf: %s (%d) event lacks required %s", c.Name, uid, strings.Join(missing, ", "))
	}
	for _, group := range atLeastOne[uid] {
		found := false
		for _, path := range group {
			found = found || present(e, path)
		}
		if !found {
			return fmt.Errorf("ocsf: %s (%d) event needs at least one of %s", c.Name, uid, strings.Join(group, ", "))
		}
	}
	act := toInt(e["activity_id"])
	if toInt(e["type_uid"]) != uid*100+act {
		return fmt.Errorf("ocsf: type_uid %v is not class_uid*100+activity_id (%d)", e["type_uid"], uid*100+act)
	}
	if toInt(e["category_uid"]) != c.CategoryUID {
		return fmt.Errorf("ocsf: category_uid %v, class %d is in category %d", e["category_uid"], uid, c.CategoryUID)
	}
	if toInt(e["time"]) <= 0 {
		return fmt.Errorf("ocsf: time %v is not a positive epoch-milliseconds timestamp", e["time"])
	}
	return nil
}

func toInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		return int(x)
	}
	return -1
}

// Marshal encodes e as JSON without HTML escaping: raw_data holds log
// lines full of "<PRI>" and "&", and consumers should see them as sent.
func (e Event) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any(e)); err != nil {
		return nil, fmt.Errorf("ocsf: encode event: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
