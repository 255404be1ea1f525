package enrich

import (
	"encoding/json"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/detect"
	"github.com/vigilhq/vigil/internal/intel"
	"github.com/vigilhq/vigil/internal/ocsf"
)

// IntelUID is an indicator finding's finding_info.uid: the set, the
// indicator and the position of the event it was found in (the event
// enrich read, which its enriched record names in vigil.origin), so the
// same event found again yields the same uid.
func IntelUID(a Alert, rec *kgo.Record) string {
	topic, part, off, _ := detect.Origin(rec)
	return detect.FindingUID("intel:"+a.Hit.M.Set+":"+a.Hit.String(), topic, part, off)
}

// IntelFinding is the OCSF Detection Finding of an indicator of an alert
// set found in the event of rec: finding_info.types ["Threat Intel"], the
// set as the analytic, the matched value as an observable with its
// reputation, and the enriched event as evidence. Like a Sigma finding
// its time is the event's record time, so it is a function of the event
// and the indicator.
func IntelFinding(a Alert, rec *kgo.Record, enriched []byte, now time.Time) ocsf.Event {
	at := rec.Timestamp
	if at.IsZero() {
		at = now
	}
	m := a.Hit.M
	e := ocsf.New(ocsf.DetectionFinding, ocsf.FindingCreate, "Create", at, ocsf.Product{Name: "Vigil", Vendor: "Vigil"})
	sev := detect.SeverityOf(m.Severity)
	if sev == ocsf.SeverityUnknown {
		sev = ocsf.SeverityMedium
	}
	e.SetSeverity(sev)
	e["status_id"] = 1
	e["status"] = "New"
	title := "Threat intel match: " + a.Value
	if m.Title != "" {
		title += " (" + m.Title + ")"
	}
	analytic := map[string]any{"uid": m.Set, "name": m.Set, "type": "Other", "type_id": 99, "category": "threat_intel"}
	info := map[string]any{
		"uid":             IntelUID(a, rec),
		"title":           title,
		"types":           []string{"Threat Intel"},
		"analytic":        analytic,
		"first_seen_time": at.UnixMilli(),
		"last_seen_time":  at.UnixMilli(),
	}
	if m.Description != "" {
		info["desc"] = m.Description
	}
	e["finding_info"] = info
	obs := map[string]any{"name": a.Name, "value": a.Value, "type_id": observableType(m.Type), "type": obsNames[observableType(m.Type)],
		"reputation": map[string]any{"score_id": reputation(m), "score": scoreNames[reputation(m)], "base_score": reputation(m), "provider": m.Set}}
	e["observables"] = []any{obs}
	if json.Valid(enriched) && len(enriched) <= maxEvidenceBytes {
		e["evidences"] = []any{map[string]any{"data": json.RawMessage(enriched)}}
	}
	ind := map[string]any{"set": m.Set, "indicator": a.Hit.String(), "indicator_type": m.Type, "match": a.Hit.Match, "action": m.Action}
	for k, v := range map[string]string{"source": m.Source, "severity": m.Severity, "title": m.Title, "id": m.ID, "valid_until": m.ValidUntil} {
		if v != "" {
			ind[k] = v
		}
	}
	if len(m.Labels) > 0 {
		ind["labels"] = m.Labels
	}
	if m.Confidence != 0 {
		ind["confidence"] = m.Confidence
	}
	source := map[string]any{"topic": rec.Topic, "partition": rec.Partition, "offset": rec.Offset, "event_bytes": len(rec.Value)}
	if len(rec.Key) > 0 {
		source["key"] = string(rec.Key)
	}
	e["unmapped"] = map[string]any{"source": source, "intel": ind}
	return e
}

// maxEvidenceBytes is detect's bound on an embedded event.
const maxEvidenceBytes = 256 << 10

func observableType(t string) int {
	switch t {
	case intel.TypeIP, intel.TypeCIDR:
		return obsIP
	case intel.TypeDomain:
		return obsHostname
	case intel.TypeURL:
		return obsURL
	case intel.TypeEmail:
		return obsEmail
	}
	return obsHash
}
