package detect

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/ocsf"
	"github.com/vigilhq/vigil/sigma"
)

// maxEvidenceBytes caps the event an alert embeds, so an alert always
// fits the broker's default max.message.bytes (1 MiB) next to its
// finding: larger events are carried as a truncated raw_data string.
const maxEvidenceBytes = 256 << 10

// ruleLicense is the license of SigmaHQ rules, which requires attribution
// of the rule's author wherever its output is shown.
const ruleLicense = "Detection Rule License (DRL) 1.1"

// SeverityOf maps a Sigma level (or an intel set's severity) onto an
// OCSF severity_id.
func SeverityOf(level string) int {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "informational":
		return ocsf.SeverityInformational
	case "low":
		return ocsf.SeverityLow
	case "medium":
		return ocsf.SeverityMedium
	case "high":
		return ocsf.SeverityHigh
	case "critical":
		return ocsf.SeverityCritical
	}
	return ocsf.SeverityUnknown
}

// FindingUID is the alert's finding_info.uid: the rule and the position of
// the event it matched. A record evaluated twice (after a crash before its
// offset was committed, or in a retro-hunt) yields the same uid, so
// consumers can deduplicate.
func FindingUID(ruleID, topic string, partition int32, offset int64) string {
	return ruleID + ":" + topic + ":" + strconv.Itoa(int(partition)) + ":" + strconv.FormatInt(offset, 10)
}

// OriginHeader names, on a record a pipeline stage derived from another
// (`vigil enrich` writes enriched.<topic>), the record it came from:
// "<topic>:<partition>:<offset>". Findings take their uid from the
// origin, so an event has the same finding uids whether the detector
// reads it enriched or not, and a record a stage wrote twice (at least
// once) yields one uid.
const OriginHeader = "vigil.origin"

// Origin is the position a finding of rec names: its OriginHeader when it
// has a valid one, else its own.
func Origin(rec *kgo.Record) (topic string, partition int32, offset int64, derived bool) {
	for _, h := range rec.Headers {
		if h.Key != OriginHeader {
			continue
		}
		v := string(h.Value)
		i := strings.LastIndexByte(v, ':')
		if i <= 0 {
			break
		}
		j := strings.LastIndexByte(v[:i], ':')
		if j <= 0 {
			break
		}
		p, err1 := strconv.ParseInt(v[j+1:i], 10, 32)
		o, err2 := strconv.ParseInt(v[i+1:], 10, 64)
		if err1 != nil || err2 != nil {
			break
		}
		return v[:j], int32(p), o, true
	}
	return rec.Topic, rec.Partition, rec.Offset, false
}

// OriginValue is the OriginHeader value naming rec.
func OriginValue(rec *kgo.Record) []byte {
	return []byte(rec.Topic + ":" + strconv.Itoa(int(rec.Partition)) + ":" + strconv.FormatInt(rec.Offset, 10))
}

// findingUID is FindingUID of rec's origin.
func findingUID(ruleID string, rec *kgo.Record) string {
	t, p, o, _ := Origin(rec)
	return FindingUID(ruleID, t, p, o)
}

// tactics maps ATT&CK tactic tag names (Sigma's attack.<tactic>) to ids.
var tactics = map[string]string{
	"reconnaissance":       "TA0043",
	"resource-development": "TA0042",
	"initial-access":       "TA0001",
	"execution":            "TA0002",
	"persistence":          "TA0003",
	"privilege-escalation": "TA0004",
	"defense-evasion":      "TA0005",
	"credential-access":    "TA0006",
	"discovery":            "TA0007",
	"lateral-movement":     "TA0008",
	"collection":           "TA0009",
	"exfiltration":         "TA0010",
	"command-and-control":  "TA0011",
	"impact":               "TA0040",
}

// attacks derives OCSF attack objects from a rule's attack.* tags: one per
// technique (attack.t1003.005 is sub-technique T1003.005 of T1003), with
// the tactic when the rule names exactly one, and one per tactic the rule
// names without any technique. Groups and software (attack.g*, attack.s*)
// are not OCSF attack objects; they stay in unmapped.sigma.tags.
func attacks(tags []string) []any {
	var tacs []map[string]any
	var techs []string
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		name, ok := strings.CutPrefix(t, "attack.")
		if !ok || name == "" {
			continue
		}
		if name[0] == 't' && len(name) >= 5 && name[1] >= '0' && name[1] <= '9' {
			techs = append(techs, strings.ToUpper(name))
			continue
		}
		if id, ok := tactics[name]; ok {
			tacs = append(tacs, map[string]any{"name": name, "uid": id})
		}
	}
	var out []any
	for _, t := range techs {
		a := map[string]any{}
		if base, _, ok := strings.Cut(t, "."); ok {
			a["technique"] = map[string]any{"uid": base}
			a["sub_technique"] = map[string]any{"uid": t}
		} else {
			a["technique"] = map[string]any{"uid": t}
		}
		if len(tacs) == 1 {
			a["tactic"] = tacs[0]
		}
		out = append(out, a)
	}
	if len(techs) == 0 || len(tacs) > 1 {
		for _, tac := range tacs {
			out = append(out, map[string]any{"tactic": tac})
		}
	}
	return out
}

// Alert builds the OCSF Detection Finding (2004) for rule matching the
// event in rec. A finding is a function of the rule and the record: its
// time is the record's timestamp (now only for a record without one), so
// the live detector, a detector evaluating the record again after a
// crash, and a retro-hunt (`vigil hunt`) write the same bytes. When it
// was written is the alert record's own timestamp.
func Alert(rule *sigma.Rule, rec *kgo.Record, now time.Time) ocsf.Event {
	at := rec.Timestamp
	if at.IsZero() {
		at = now
	}
	e := ocsf.New(ocsf.DetectionFinding, ocsf.FindingCreate, "Create", at, ocsf.Product{Name: "Vigil", Vendor: "Vigil"})
	e.SetSeverity(SeverityOf(rule.Level))
	e["status_id"] = 1
	e["status"] = "New"
	attribution := "Sigma rule"
	if rule.Author != "" {
		attribution += " by " + rule.Author
	}
	attribution += ", " + ruleLicense
	analytic := map[string]any{"uid": rule.ID, "name": rule.Title, "type": "Rule", "type_id": 1, "desc": attribution}
	if rule.Logsource != (sigma.Logsource{}) {
		analytic["category"] = strings.Trim(strings.Join([]string{rule.Logsource.Product, rule.Logsource.Category, rule.Logsource.Service}, "/"), "/")
	}
	info := map[string]any{
		"uid":      findingUID(rule.ID, rec),
		"title":    rule.Title,
		"types":    []string{"Sigma"},
		"analytic": analytic,
	}
	if rule.Description != "" {
		info["desc"] = rule.Description
	}
	if !rec.Timestamp.IsZero() {
		info["first_seen_time"] = rec.Timestamp.UnixMilli()
		info["last_seen_time"] = rec.Timestamp.UnixMilli()
	}
	if a := attacks(rule.Tags); len(a) > 0 {
		info["attacks"] = a
	}
	e["finding_info"] = info
	if len(rec.Value) <= maxEvidenceBytes && json.Valid(rec.Value) {
		e["evidences"] = []any{map[string]any{"data": json.RawMessage(rec.Value)}}
	} else {
		raw := rec.Value
		if len(raw) > maxEvidenceBytes {
			raw = raw[:maxEvidenceBytes]
		}
		e["raw_data"] = strings.ToValidUTF8(string(raw), "")
	}
	sig := map[string]any{"id": rule.ID, "title": rule.Title, "author": rule.Author, "license": ruleLicense}
	if rule.Level != "" {
		sig["level"] = rule.Level
	}
	if rule.Status != "" {
		sig["status"] = rule.Status
	}
	if len(rule.Tags) > 0 {
		sig["tags"] = rule.Tags
	}
	if rule.Path != "" {
		sig["path"] = rule.Path
	}
	source := map[string]any{"topic": rec.Topic, "partition": rec.Partition, "offset": rec.Offset, "event_bytes": len(rec.Value)}
	if len(rec.Key) > 0 {
		source["key"] = string(rec.Key)
	}
	if len(rec.Value) > maxEvidenceBytes {
		source["event_truncated"] = true
	}
	if t, p, o, ok := Origin(rec); ok {
		source["origin"] = map[string]any{"topic": t, "partition": p, "offset": o}
	}
	e["unmapped"] = map[string]any{"source": source, "sigma": sig}
	return e
}

// CorrelationUID is a correlation finding's finding_info.uid: the
// correlation rule, the group and the position of the event that completed
// the condition, so re-evaluating that event yields the same uid.
func CorrelationUID(m sigma.CorrelationMatch, topic string, partition int32, offset int64) string {
	return FindingUID(m.Rule.ID+":"+strings.Join(m.GroupBy, ","), topic, partition, offset)
}

// CorrelationAlert builds the OCSF Detection Finding for a correlation rule
// whose condition became true with the event in rec: finding_info.types
// ["Sigma", "Correlation"], the window in first_seen_time/last_seen_time,
// and the contributing rules, group-by values and count in
// unmapped.correlation. The event that completed it is the evidence.
func CorrelationAlert(m sigma.CorrelationMatch, rec *kgo.Record, now time.Time) ocsf.Event {
	e := Alert(m.Rule, rec, now)
	def := m.Rule.Correlation
	info := e["finding_info"].(map[string]any)
	t, p, o, _ := Origin(rec)
	info["uid"] = CorrelationUID(m, t, p, o)
	info["types"] = []string{"Sigma", "Correlation"}
	info["first_seen_time"] = m.First.UnixMilli()
	info["last_seen_time"] = m.Last.UnixMilli()
	delete(info["analytic"].(map[string]any), "category") // correlation rules have no logsource
	groupBy := map[string]string{}
	for i, f := range def.GroupBy {
		groupBy[f] = m.GroupBy[i]
	}
	cond := map[string]any{def.Op: def.Value}
	if def.Field != "" {
		cond["field"] = def.Field
	}
	corr := map[string]any{
		"type": def.Type, "rules": m.Rules, "group_by": groupBy, "timespan": def.Timespan.String(),
		"condition": cond, "count": m.Count,
		"window": map[string]any{"start_time": m.First.UnixMilli(), "end_time": m.Last.UnixMilli()},
	}
	e["unmapped"].(map[string]any)["correlation"] = corr
	return e
}
