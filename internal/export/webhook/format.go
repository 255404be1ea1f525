package webhook

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/alerts"
	"github.com/vigilhq/vigil/internal/export"
)

// Summary is what a chat message says about a record: a finding's rule,
// severity, host and user (read as `vigil alerts` reads them), or any
// other event's class and message.
type Summary struct {
	Title    string
	Severity string
	Time     time.Time
	Host     string
	User     string
	Count    int
	UID      string
	Kind     string // finding types ("Sigma", "Threat Intel"), or the event's class
}

// Summarize reads the summary of a record.
func Summarize(d *export.Doc) Summary {
	if row, ok := alerts.Parse(d.Value()); ok {
		return Summary{Title: row.Rule, Severity: row.Severity, Time: row.Time, Host: row.Host, User: row.User,
			Count: row.Count, UID: row.UID, Kind: row.Kind}
	}
	var ev struct {
		ClassName string `json:"class_name"`
		Message   string `json:"message"`
		Severity  string `json:"severity"`
		Device    struct {
			Hostname string `json:"hostname"`
		} `json:"device"`
	}
	_ = json.Unmarshal(d.Value(), &ev)
	s := Summary{Title: ev.Message, Severity: ev.Severity, Time: d.Time, Host: ev.Device.Hostname, Count: 1, UID: d.ID, Kind: ev.ClassName}
	if s.Title == "" {
		s.Title = ev.ClassName
	}
	if s.Title == "" {
		s.Title = "event " + d.ID
	}
	return s
}

// Body renders a record in a format: the record itself (raw), a Slack
// Block Kit message or a Teams Adaptive Card message.
func Body(format string, d *export.Doc) ([]byte, error) {
	switch format {
	case FormatRaw, "":
		return d.Value(), nil
	case FormatSlack:
		return json.Marshal(slackMessage(Summarize(d)))
	case FormatTeams:
		return json.Marshal(teamsMessage(Summarize(d)))
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// facts are the summary's labelled values, in the order messages show
// them, empty ones left out.
func (s Summary) facts() [][2]string {
	var out [][2]string
	add := func(k, v string) {
		if v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	add("Severity", s.Severity)
	add("Time", s.Time.UTC().Format(time.RFC3339))
	add("Host", s.Host)
	add("User", s.User)
	if s.Count > 1 {
		add("Count", fmt.Sprint(s.Count))
	}
	add("Kind", s.Kind)
	add("Id", s.UID)
	return out
}

// fallback is the one-line text of a message (notifications, clients
// without blocks or cards).
func (s Summary) fallback() string {
	parts := []string{s.Title}
	if s.Severity != "" {
		parts[0] = "[" + s.Severity + "] " + s.Title
	}
	if s.Host != "" {
		parts = append(parts, "host "+s.Host)
	}
	if s.User != "" {
		parts = append(parts, "user "+s.User)
	}
	return strings.Join(parts, ", ")
}

// slackMessage is a Block Kit message: a header with the title, a
// section of fields, the id in a context line. Slack limits a header to
// 150 characters and a field to 2000.
func slackMessage(s Summary) map[string]any {
	var fields []map[string]any
	for _, f := range s.facts() {
		if f[0] == "Id" {
			continue
		}
		fields = append(fields, map[string]any{"type": "mrkdwn", "text": "*" + f[0] + "*\n" + cut(f[1], 1900)})
	}
	blocks := []map[string]any{
		{"type": "header", "text": map[string]any{"type": "plain_text", "text": cut(s.Title, 150)}},
	}
	if len(fields) > 0 {
		blocks = append(blocks, map[string]any{"type": "section", "fields": fields[:min(len(fields), 10)]})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []map[string]any{{"type": "mrkdwn", "text": "Vigil " + cut(s.UID, 2900)}}})
	return map[string]any{"text": cut(s.fallback(), 3000), "blocks": blocks}
}

// teamsMessage is the message a Teams Workflows webhook ("post to a
// channel when a webhook request is received") takes: an attachment
// holding an Adaptive Card with the title and a fact set.
func teamsMessage(s Summary) map[string]any {
	var facts []map[string]any
	for _, f := range s.facts() {
		facts = append(facts, map[string]any{"title": f[0], "value": f[1]})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body": []map[string]any{
			{"type": "TextBlock", "text": s.Title, "weight": "Bolder", "size": "Medium", "wrap": true},
			{"type": "FactSet", "facts": facts},
		},
		"fallbackText": s.fallback(),
	}
	return map[string]any{
		"type":        "message",
		"summary":     s.fallback(),
		"attachments": []map[string]any{{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": nil, "content": card}},
	}
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
