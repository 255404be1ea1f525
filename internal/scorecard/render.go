package scorecard

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// Format is a report's rendering.
type Format string

// The formats WriteReport knows.
const (
	Markdown Format = "markdown"
	JSON     Format = "json"
	HTML     Format = "html"
)

// FormatOf picks the format from an output file's extension.
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".md", ".markdown":
		return Markdown, nil
	case ".json":
		return JSON, nil
	case ".html", ".htm":
		return HTML, nil
	}
	return "", fmt.Errorf("%q: want a file ending in .md, .json or .html", path)
}

// LimitsText is the limits a run keeps, as printed before it starts.
func LimitsText(c Config) string {
	c = c.withDefaults()
	probes := fmt.Sprintf("%s per probe, the burst probe's %s of windows on top", c.ProbeTimeout, burstWindows*burstWindow)
	if c.AllowFaults {
		fault := fmt.Sprintf("%s paused", c.FaultPause)
		if c.FaultSignal == FaultKill {
			fault = "killed"
		}
		probes += fmt.Sprintf(", each fault probe %s (the broker %s, at most %s to recover, and a probe's time)", c.faultLimit(), fault, c.RecoveryTimeout)
	}
	return fmt.Sprintf("limits: %s overall (cleanup included), %s; load: %s, written one probe at a time; the probes read only their own topics; everything named vigil-scorecard-*-SUFFIX and deleted at the end",
		c.Timeout, probes, PlanFor(c))
}

// Write renders r in format f.
func Write(w io.Writer, r *Report, f Format) error {
	var err error
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	case HTML:
		err = htmlReport.Execute(w, view(r))
	default:
		err = writeMarkdown(w, r)
	}
	if err != nil {
		return fmt.Errorf("write the %s report: %w", f, err)
	}
	return nil
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

// cell escapes what would break a markdown table.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// seen is a probe's detail with its error.
func seen(p Probe) string {
	switch {
	case p.Error == "":
		return p.Detail
	case p.Detail == "":
		return p.Error
	}
	return p.Detail + ": " + p.Error
}

func writeMarkdown(w io.Writer, r *Report) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# Scorecard of %s\n\n", strings.Join(r.Brokers, ","))
	fmt.Fprintf(b, "Probed %s over %s as %s, in %s.\n\n", r.Started.Format(time.RFC3339), r.Protocol, r.Principal, ms(r.Duration))
	fmt.Fprintf(b, "Limits: %s overall, %s per probe; %s. Written: %d records (%d bytes), %d topics, %d consumer groups.\n\n",
		r.Limits.Timeout, r.Limits.ProbeTimeout, r.Limits.Plan, r.Load.Records, r.Load.Bytes, r.Load.Topics, r.Load.Groups)

	fmt.Fprintf(b, "## API compatibility: %d of %d probes passed\n\n", r.Compatibility.Passed, r.Compatibility.Scored)
	fmt.Fprintf(b, "ApiVersions: %d brokers answered; the versions below are offered by all of them. franz-go's kversion guess (by the newest Kafka release whose every API is offered): %s.\n\n", r.Answering, r.Guess)
	b.WriteString("| API | needed for | needs | offered | verdict |\n| --- | --- | --- | --- | --- |\n")
	for _, a := range r.APIs {
		offered := "no"
		if a.Offered {
			offered = fmt.Sprintf("v%d-%d", a.Min, a.Max)
		}
		fmt.Fprintf(b, "| %s (%d) | %s | v%d | %s | %s %s |\n", a.Name, a.Key, cell(a.For), a.Needs, offered, a.Verdict, cell(a.Comments))
	}
	if len(r.OtherAPIs) > 0 {
		fmt.Fprintf(b, "\nAlso offered: %s.\n", strings.Join(r.OtherAPIs, ", "))
	}
	b.WriteString("\n")
	probeTable(b, r.Compatibility.Probes)

	for _, a := range r.laterAreas() {
		fmt.Fprintf(b, "\n## %s\n\n%s\n\n", a.title, a.note)
		probeTable(b, a.area.Probes)
		if a.extra != "" {
			fmt.Fprintf(b, "\n%s\n", a.extra)
		}
	}

	b.WriteString("\n## Cost\n\n")
	if r.Cost == nil {
		fmt.Fprintf(b, "%s.\n", r.CostNote)
	} else {
		c := r.Cost
		fmt.Fprintf(b, "%s.\n\nWorkload: %g GB/day ingested, %g days kept, %g of it replayed a month, %d consumer groups, %d zones.\n\n",
			r.CostNote, c.Inputs.IngestGBPerDay, c.Inputs.RetentionDays, c.Inputs.ReplayFraction, c.Inputs.Fanout, c.Inputs.Zones)
		fmt.Fprintf(b, "| system | monthly total |\n| --- | --- |\n| Vigil | $%.2f |\n| Kafka, 3 replicas on local disks | $%.2f |\n\nEach term: vigil cost with the same flags.\n",
			c.VigilTotal, c.KafkaTotal)
	}

	b.WriteString("\n## Cleanup\n\n")
	if len(r.Cleanup) == 0 {
		b.WriteString("Nothing was created.\n")
	} else {
		probeTable(b, r.Cleanup)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func probeTable(b *strings.Builder, ps []Probe) {
	b.WriteString("| probe | result | time | what was seen |\n| --- | --- | --- | --- |\n")
	for _, p := range ps {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", cell(p.Name), p.Status, ms(p.Duration), cell(seen(p)))
	}
}

// htmlView is what the HTML template reads.
type htmlView struct {
	*Report
	Limits, Load string
	Areas        []htmlArea
	Cleanup      []htmlProbe
}

type htmlArea struct {
	Title, Note, Extra string
	Probes             []htmlProbe
}

type htmlProbe struct{ Name, Status, Time, Seen string }

func view(r *Report) htmlView {
	probes := func(ps []Probe) []htmlProbe {
		var out []htmlProbe
		for _, p := range ps {
			out = append(out, htmlProbe{p.Name, string(p.Status), ms(p.Duration), seen(p)})
		}
		return out
	}
	v := htmlView{Report: r,
		Limits:  fmt.Sprintf("%s overall, %s per probe; %s", r.Limits.Timeout, r.Limits.ProbeTimeout, r.Limits.Plan),
		Load:    fmt.Sprintf("%d records (%d bytes), %d topics, %d consumer groups", r.Load.Records, r.Load.Bytes, r.Load.Topics, r.Load.Groups),
		Cleanup: probes(r.Cleanup),
	}
	v.Areas = []htmlArea{{Title: fmt.Sprintf("API compatibility: %d of %d probes passed", r.Compatibility.Passed, r.Compatibility.Scored),
		Probes: probes(r.Compatibility.Probes)}}
	for _, a := range r.laterAreas() {
		v.Areas = append(v.Areas, htmlArea{Title: a.title, Note: a.note, Probes: probes(a.area.Probes), Extra: a.extra})
	}
	return v
}

// shownArea is an area after API compatibility, as the reports show it.
type shownArea struct {
	title, note, extra string
	area               Area
}

func (r *Report) laterAreas() []shownArea {
	score := func(a Area) string { return fmt.Sprintf("%s: %d of %d probes passed", a.Name, a.Passed, a.Scored) }
	out := []shownArea{
		{score(r.Security), "Pass means the boundary held. Only the listener at the given address is probed: other listeners of the cluster are not visible over the Kafka protocol.", "", r.Security},
		{score(r.Migration), "Whether vigil mirror can read this cluster: each check is a request its reader makes of a source (Fetch at most v12, read_uncommitted, control records kept), on a topic the first check writes.", "", r.Migration},
		{score(r.Burst), "A paced producer (acks=all, one record in flight) through alternating windows without and with a replay re-reading a history from offset 0 as fast as it can: the tail latency ratio.", "", r.Burst},
		{score(r.Recovery), "Only with --allow-faults and the broker processes it may signal; the probe never starts a process.", "", r.Recovery},
	}
	if b := r.BurstFigures; b != nil {
		out[2].extra = fmt.Sprintf("| side | records | p50 | p99 | max |\n| --- | --- | --- | --- | --- |\n| without the replay | %d | %s | %s | %s |\n| with the replay | %d | %s | %s | %s |\n\np99 ratio %.2f x (pass at most %.2f x); replay %.1f MB/s over %s.",
			b.Without.Samples, ms3(b.Without.P50), ms3(b.Without.P99), ms3(b.Without.Max), b.With.Samples, ms3(b.With.P50), ms3(b.With.P99), ms3(b.With.Max),
			b.Ratio, b.Threshold, b.ReplayMBps, b.ReplayFor.Round(time.Millisecond))
	}
	return out
}

func ms3(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

var htmlReport = template.Must(template.New("scorecard").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Scorecard of {{range $i, $b := .Brokers}}{{if $i}},{{end}}{{$b}}{{end}}</title>
<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
.pass{color:#060}.fail{color:#b00}.unsupported,.missing{color:#a50}</style></head><body>
<h1>Scorecard of {{range $i, $b := .Brokers}}{{if $i}},{{end}}{{$b}}{{end}}</h1>
<p>Probed {{.Started.Format "2006-01-02T15:04:05Z07:00"}} over {{.Protocol}} as {{.Principal}}. Limits: {{.Limits}}. Written: {{.Load}}.</p>
<h2>ApiVersions</h2>
<p>{{.Answering}} brokers answered; franz-go's kversion guess (by the newest Kafka release whose every API is offered): {{.Guess}}.</p>
<table><tr><th>API</th><th>needed for</th><th>needs</th><th>offered</th><th>verdict</th></tr>
{{range .APIs}}<tr><td>{{.Name}} ({{.Key}})</td><td>{{.For}}</td><td>v{{.Needs}}</td><td>{{if .Offered}}v{{.Min}}-{{.Max}}{{else}}no{{end}}</td><td class="{{.Verdict}}">{{.Verdict}} {{.Comments}}</td></tr>
{{end}}</table>
{{if .OtherAPIs}}<p>Also offered: {{range $i, $a := .OtherAPIs}}{{if $i}}, {{end}}{{$a}}{{end}}.</p>{{end}}
{{range .Areas}}<h2>{{.Title}}</h2>
{{if .Note}}<p>{{.Note}}</p>{{end}}
<table><tr><th>probe</th><th>result</th><th>time</th><th>what was seen</th></tr>
{{range .Probes}}<tr><td>{{.Name}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{.Time}}</td><td>{{.Seen}}</td></tr>
{{end}}</table>
{{if .Extra}}<pre>{{.Extra}}</pre>{{end}}
{{end}}
<h2>Cost</h2>
<p>{{.CostNote}}.</p>
{{with .Cost}}<table><tr><th>system</th><th>monthly total (USD)</th></tr><tr><td>Vigil</td><td>{{printf "%.2f" .VigilTotal}}</td></tr><tr><td>Kafka, 3 replicas on local disks</td><td>{{printf "%.2f" .KafkaTotal}}</td></tr></table>{{end}}
<h2>Cleanup</h2>
<table><tr><th>what</th><th>result</th><th>time</th><th>what was seen</th></tr>
{{range .Cleanup}}<tr><td>{{.Name}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{.Time}}</td><td>{{.Seen}}</td></tr>
{{end}}</table>
</body></html>
`))
