// Package alerts is the terminal's view of findings (`vigil alerts list`
// and `tail`): OCSF Detection Findings read from the alerts topic, one
// row each with its time, severity, rule, host, user and count, a
// suppression update folded into the row of the finding it updates (same
// finding_info.uid).
package alerts

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one finding as the view shows it.
type Row struct {
	UID      string
	Time     time.Time // the event's time (the finding's time)
	Severity string
	SevID    int
	Rule     string
	Host     string
	User     string
	Count    int // 1, or the suppression update's count
	Kind     string
}

type finding struct {
	ClassUID   int    `json:"class_uid"`
	ActivityID int    `json:"activity_id"`
	Time       int64  `json:"time"`
	StartTime  int64  `json:"start_time"`
	Severity   string `json:"severity"`
	SeverityID int    `json:"severity_id"`
	Count      int    `json:"count"`
	Info       struct {
		UID   string   `json:"uid"`
		Title string   `json:"title"`
		Types []string `json:"types"`
	} `json:"finding_info"`
	Evidences []struct {
		Data json.RawMessage `json:"data"`
	} `json:"evidences"`
	Unmapped struct {
		Source struct {
			Key string `json:"key"`
		} `json:"source"`
	} `json:"unmapped"`
}

// Parse reads one alerts record value; ok is false for anything that is
// not a Detection Finding.
func Parse(v []byte) (Row, bool) {
	var f finding
	if err := json.Unmarshal(v, &f); err != nil || f.ClassUID != 2004 || f.Info.UID == "" {
		return Row{}, false
	}
	r := Row{UID: f.Info.UID, Time: time.UnixMilli(f.Time), Severity: f.Severity, SevID: f.SeverityID, Rule: f.Info.Title,
		Count: max(f.Count, 1), Kind: strings.Join(f.Info.Types, "/")}
	if f.ActivityID == 2 && f.StartTime > 0 {
		r.Time = time.UnixMilli(f.StartTime)
	}
	if len(f.Evidences) > 0 {
		r.Host, r.User = hostUser(f.Evidences[0].Data)
	}
	if r.Host == "" {
		r.Host = f.Unmapped.Source.Key
	}
	return r, true
}

// IsUpdate reports whether a finding value is an update (activity 2).
func IsUpdate(v []byte) bool {
	var f struct {
		ActivityID int `json:"activity_id"`
	}
	return json.Unmarshal(v, &f) == nil && f.ActivityID == 2
}

// hostUser finds the host and the user of an evidence event, in the
// places OCSF events and Windows events keep them.
func hostUser(data []byte) (host, user string) {
	var ev map[string]any
	if json.Unmarshal(data, &ev) != nil {
		return "", ""
	}
	host = first(ev, "device.hostname", "Event.System.Computer", "Computer", "src_endpoint.hostname", "dst_endpoint.hostname", "host")
	user = first(ev, "user.name", "actor.user.name", "Event.EventData.User", "Event.EventData.TargetUserName",
		"Event.EventData.SubjectUserName", "User", "TargetUserName", "unmapped.User", "unmapped.user")
	return host, user
}

func first(ev map[string]any, paths ...string) string {
	for _, p := range paths {
		var cur any = ev
		for _, k := range strings.Split(p, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = m[k]
		}
		if s, ok := cur.(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// View keeps rows by uid, an update replacing its finding's count.
type View struct {
	rows  []*Row
	byUID map[string]*Row
}

// NewView returns an empty view.
func NewView() *View { return &View{byUID: map[string]*Row{}} }

// Add folds one record value into the view; it returns the row it made
// or changed, or nil.
func (v *View) Add(value []byte) *Row {
	r, ok := Parse(value)
	if !ok {
		return nil
	}
	if old := v.byUID[r.UID]; old != nil {
		if IsUpdate(value) {
			old.Count = r.Count
		}
		return old
	}
	v.rows = append(v.rows, &r)
	v.byUID[r.UID] = &r
	return &r
}

// Rows returns the rows in the order their findings arrived.
func (v *View) Rows() []*Row { return v.rows }

// Filter says which rows a view shows.
type Filter struct {
	MinSeverity int    // severity_id at least this
	Rule        string // rule title contains (case-insensitive)
	Host, User  string // equal (case-insensitive)
}

// Keep reports whether r passes f.
func (f Filter) Keep(r *Row) bool {
	if r.SevID < f.MinSeverity {
		return false
	}
	if f.Rule != "" && !strings.Contains(strings.ToLower(r.Rule), strings.ToLower(f.Rule)) {
		return false
	}
	if f.Host != "" && !strings.EqualFold(f.Host, r.Host) {
		return false
	}
	if f.User != "" && !strings.EqualFold(f.User, r.User) {
		return false
	}
	return true
}

// Table writes rows as aligned columns: TIME SEVERITY RULE HOST USER COUNT.
type Table struct {
	tw     *tabwriter.Writer
	header bool
	UTC    bool
}

// NewTable writes to w.
func NewTable(w io.Writer) *Table {
	return &Table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

// Write writes one row (the header before the first).
func (t *Table) Write(r *Row) {
	if !t.header {
		fmt.Fprintln(t.tw, "TIME\tSEVERITY\tRULE\tHOST\tUSER\tCOUNT")
		t.header = true
	}
	tm := r.Time
	if t.UTC {
		tm = tm.UTC()
	}
	rule := r.Rule
	if len(rule) > 70 {
		rule = rule[:67] + "..."
	}
	fmt.Fprintf(t.tw, "%s\t%s\t%s\t%s\t%s\t%d\n", tm.Format("2006-01-02 15:04:05"), dash(r.Severity), dash(rule), dash(r.Host), dash(r.User), r.Count)
}

// Flush writes what is buffered.
func (t *Table) Flush() error { return t.tw.Flush() }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// SeverityID parses a severity name (informational, low, medium, high,
// critical) or number.
func SeverityID(s string) (int, error) {
	switch strings.ToLower(s) {
	case "", "unknown", "0":
		return 0, nil
	case "informational", "info", "1":
		return 1, nil
	case "low", "2":
		return 2, nil
	case "medium", "3":
		return 3, nil
	case "high", "4":
		return 4, nil
	case "critical", "5":
		return 5, nil
	}
	return 0, fmt.Errorf("severity %q: want informational, low, medium, high or critical", s)
}
