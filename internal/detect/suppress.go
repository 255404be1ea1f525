package detect

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/ocsf"
	"github.com/vigilhq/vigil/sigma"
)

// Suppression (alert hygiene).
//
// A rule with a suppression entry in the detection config (sigma.Config
// Suppression: rules, window, group_by) folds its identical findings: the
// first match of a (rule, group-by values) opens a window of that length
// in event time and is written at once, as any finding, carrying
// unmapped.suppression; later matches inside the window write nothing
// and are counted. When the window closes and it counted more than one,
// an update is written: the same finding_info.uid, activity Update
// (type_uid 200402), count, start_time/end_time and first/last_seen_time
// over the window's matches, without the evidence (the first finding has
// it). This is Elastic's alert suppression model: the alert is not
// delayed, and one finding says how many it stands for. A match after the
// window opens a new window: a new finding with its own uid.
//
// A window closes when a record of its partition is past its end (event
// time, so a hunt and the live detector close it at the same record), at
// the end of a hunt, or when it got no match for window+1m of wall time
// (an idle partition). Which records fold is a function of the records
// of one group in partition order, the order ingest keeps per host.
// Windows are kept in memory only: after a restart the next match opens a
// new finding (at least once, as for any finding).
type Suppressor struct {
	eng     *sigma.Engine
	windows map[string]*supWindow
	// clock is each partition's newest record time (ms).
	clock map[tp]int64
	// Max bounds the open windows; past it the oldest closes early.
	Max int
}

type tp struct {
	topic string
	part  int32
}

type supWindow struct {
	key         string
	rule        *sigma.Rule
	sup         *sigma.Suppression
	vals        []string
	rec         kgo.Record // the first match's record, without its value
	end         int64
	first, last int64
	count       int
	lastHit     time.Time // wall clock
	part        tp
}

// NewSuppressor returns the suppression state of eng's rules, or nil when
// no rule has a suppression entry.
func NewSuppressor(eng *sigma.Engine) *Suppressor {
	any := false
	for _, r := range eng.Rules() {
		if eng.Suppression(r) != nil {
			any = true
			break
		}
	}
	if !any {
		return nil
	}
	return &Suppressor{eng: eng, windows: map[string]*supWindow{}, clock: map[tp]int64{}, Max: 100000}
}

// Open counts the open windows.
func (s *Suppressor) Open() int { return len(s.windows) }

// seen advances the clock of rec's partition.
func (s *Suppressor) seen(rec *kgo.Record) {
	k := tp{rec.Topic, rec.Partition}
	if t := rec.Timestamp.UnixMilli(); t > s.clock[k] {
		s.clock[k] = t
	}
}

// observe decides about a match of rule (with its suppression entry) in
// rec: true means write its finding. Updates of windows it closes are
// appended to out.
func (s *Suppressor) observe(rule *sigma.Rule, sup *sigma.Suppression, rec *kgo.Record, fields sigma.FieldSource, now time.Time, out []*kgo.Record, alertsTopic string) (bool, []string, []*kgo.Record) {
	vals := make([]string, len(sup.GroupBy))
	for i, f := range sup.GroupBy {
		vals[i], _ = fields.FieldValue(f)
	}
	key := rule.ID + "\x00" + strings.Join(vals, "\x00")
	t := rec.Timestamp.UnixMilli()
	if w := s.windows[key]; w != nil {
		if t < w.end {
			w.count++
			w.first, w.last = min(w.first, t), max(w.last, t)
			w.lastHit = now
			return false, vals, out
		}
		out = s.close(w, now, out, alertsTopic)
	}
	if len(s.windows) >= s.Max {
		var oldest *supWindow
		for _, w := range s.windows {
			if oldest == nil || w.lastHit.Before(oldest.lastHit) {
				oldest = w
			}
		}
		out = s.close(oldest, now, out, alertsTopic)
	}
	w := &supWindow{key: key, rule: rule, sup: sup, vals: vals, end: t + sup.Window.Milliseconds(), first: t, last: t, count: 1,
		lastHit: now, part: tp{rec.Topic, rec.Partition}}
	w.rec = kgo.Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Timestamp: rec.Timestamp, Headers: rec.Headers}
	s.windows[key] = w
	return true, vals, out
}

// close removes w and appends its update when it folded several matches.
func (s *Suppressor) close(w *supWindow, now time.Time, out []*kgo.Record, alertsTopic string) []*kgo.Record {
	delete(s.windows, w.key)
	if w.count < 2 {
		return out
	}
	v, err := SuppressedUpdate(w.rule, w.sup, w.vals, &w.rec, w.count, time.UnixMilli(w.first), time.UnixMilli(w.last), now).Marshal()
	if err != nil {
		return out
	}
	return append(out, &kgo.Record{Topic: alertsTopic, Key: w.rec.Key, Value: v, Headers: []kgo.RecordHeader{
		{Key: "rule_id", Value: []byte(w.rule.ID)},
		{Key: "class_uid", Value: []byte("2004")},
		{Key: "suppressed", Value: []byte("update")},
	}})
}

// Expire closes the windows whose partition's clock passed their end,
// and with idle set (the live detector) those without a match for
// window+1m of wall time.
func (s *Suppressor) Expire(now time.Time, idle bool, out []*kgo.Record, alertsTopic string) []*kgo.Record {
	for _, w := range s.sorted() {
		if s.clock[w.part] >= w.end || idle && now.Sub(w.lastHit) >= w.sup.Window+time.Minute {
			out = s.close(w, now, out, alertsTopic)
		}
	}
	return out
}

// Flush closes every window (the end of a hunt).
func (s *Suppressor) Flush(now time.Time, out []*kgo.Record, alertsTopic string) []*kgo.Record {
	for _, w := range s.sorted() {
		out = s.close(w, now, out, alertsTopic)
	}
	return out
}

// sorted lists the windows by first record, so updates come out in a
// fixed order.
func (s *Suppressor) sorted() []*supWindow {
	ws := make([]*supWindow, 0, len(s.windows))
	for _, w := range s.windows {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b *supWindow) int {
		if a.first != b.first {
			return cmp.Compare(a.first, b.first)
		}
		return strings.Compare(a.key, b.key)
	})
	return ws
}

// suppressionInfo is unmapped.suppression of a suppressed rule's finding.
func suppressionInfo(sup *sigma.Suppression, vals []string) map[string]any {
	gb := map[string]string{}
	for i, f := range sup.GroupBy {
		gb[f] = vals[i]
	}
	return map[string]any{"window": sup.Window.String(), "group_by": gb}
}

// SuppressedUpdate is the Detection Finding update that closes a
// suppression window: the first finding's uid, title and analytic,
// activity Update, count, start_time/end_time and first/last_seen_time
// over the window, without evidence.
func SuppressedUpdate(rule *sigma.Rule, sup *sigma.Suppression, vals []string, first *kgo.Record, count int, from, to, now time.Time) ocsf.Event {
	e := Alert(rule, first, now)
	delete(e, "evidences")
	delete(e, "raw_data")
	e["activity_id"] = 2
	e["activity_name"] = "Update"
	e["type_uid"] = ocsf.DetectionFinding.UID*100 + 2
	e["type_name"] = ocsf.DetectionFinding.Name + ": Update"
	e["time"] = to.UnixMilli()
	e["count"] = count
	e["start_time"] = from.UnixMilli()
	e["end_time"] = to.UnixMilli()
	info := e["finding_info"].(map[string]any)
	info["first_seen_time"] = from.UnixMilli()
	info["last_seen_time"] = to.UnixMilli()
	um := e["unmapped"].(map[string]any)
	delete(um["source"].(map[string]any), "event_bytes")
	si := suppressionInfo(sup, vals)
	si["count"] = count
	um["suppression"] = si
	return e
}
