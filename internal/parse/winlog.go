package parse

import (
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Windows event log records as JSON, in the two common shapes: winlogbeat
// ({"winlog": {"channel", "event_id", "computer_name", "event_data"}})
// and evtx_dump / evtx-rs ({"Event": {"System": {...}, "EventData":
// {...}}}). Mapped: Security 4624/4625 (logon), 4634/4647 (logoff) to
// Authentication; Security 4688/4689 and Sysmon 1/5 to Process Activity;
// Sysmon 3 to Network Activity; Sysmon 22 to DNS Activity.

var windowsProduct = ocsf.Product{Name: "Windows", Vendor: "Microsoft"}

const sysmonChannel = "Microsoft-Windows-Sysmon/Operational"

type winEvent struct {
	channel, computer, provider, message string
	id                                   int
	ts                                   time.Time
	data                                 map[string]any
}

// normWinlog reads either shape into a winEvent.
func normWinlog(o map[string]any) (winEvent, bool) {
	var w winEvent
	if wl := obj(o, "winlog"); wl != nil {
		w.channel = str(wl, "channel")
		w.computer = str(wl, "computer_name")
		w.provider = str(wl, "provider_name")
		id, ok := num(wl, "event_id")
		if !ok {
			return w, false
		}
		w.id = int(id)
		w.data = obj(wl, "event_data")
		w.message = str(o, "message")
		// Without a time the receive time stands in (see Winlog).
		w.ts, _ = time.Parse(time.RFC3339Nano, str(o, "@timestamp"))
		if w.computer == "" {
			w.computer = str(obj(o, "host"), "name")
		}
		return w, true
	}
	ev := obj(o, "Event")
	sys := obj(ev, "System")
	if sys == nil {
		return w, false
	}
	w.channel = str(sys, "Channel")
	w.computer = str(sys, "Computer")
	w.provider = str(obj(obj(sys, "Provider"), "#attributes"), "Name")
	id, ok := num(sys, "EventID")
	if !ok {
		// <EventID Qualifiers="..">4624</EventID> dumps as {"#text": 4624}.
		if id, ok = num(obj(sys, "EventID"), "#text"); !ok {
			return w, false
		}
	}
	w.id = int(id)
	w.ts, _ = time.Parse(time.RFC3339Nano, str(obj(obj(sys, "TimeCreated"), "#attributes"), "SystemTime"))
	w.data = obj(ev, "EventData")
	if w.data == nil {
		// Some events (4719, 1102, Defender's) put their data in
		// UserData.<element>.
		for _, v := range obj(ev, "UserData") {
			if m, ok := v.(map[string]any); ok {
				w.data = m
				break
			}
		}
	}
	return w, true
}

// winPID reads a process id written in decimal (Sysmon) or hex "0x1a4"
// (Security).
func winPID(m map[string]any, key string) (int64, bool) {
	s := str(m, key)
	if strings.HasPrefix(s, "0x") {
		n, err := strconv.ParseInt(s[2:], 16, 64)
		return n, err == nil
	}
	return num(m, key)
}

// Winlog maps one Windows event; host keys it when the record names no
// computer.
func (p *Parsers) Winlog(o map[string]any, raw []byte, host string) Result {
	w, ok := normWinlog(o)
	if !ok {
		// Not a Windows event in a shape Vigil reads (no event id): kept
		// whole.
		return p.jsonBase(SourceWinlog, o, raw, host, windowsProduct, w.channel)
	}
	if w.ts.IsZero() {
		w.ts = p.now()
	}
	if w.computer != "" {
		host = w.computer
	}
	d := w.data
	if d == nil {
		d = map[string]any{}
	}
	var e ocsf.Event
	user := func(prefix string) string {
		name := str(d, prefix+"UserName")
		if dom := str(d, prefix+"DomainName"); dom != "" && dom != "-" {
			return dom + `\` + name
		}
		return name
	}
	switch {
	case w.channel == "Security" && (w.id == 4624 || w.id == 4625):
		e = ocsf.New(ocsf.Authentication, ocsf.AuthLogon, "Logon", w.ts, windowsProduct)
		e.Set("user.name", user("Target"))
		e.Set("user.uid", str(d, "TargetUserSid"))
		if w.id == 4624 {
			e.SetStatus(ocsf.StatusSuccess)
		} else {
			e.SetStatus(ocsf.StatusFailure)
			e.SetSeverity(ocsf.SeverityLow)
			e.Set("status_code", str(d, "Status"))
			e.Set("status_detail", str(d, "FailureReason"))
		}
		if lt, ok := num(d, "LogonType"); ok {
			e.Set("logon_type_id", lt)
			e["is_remote"] = lt == 3 || lt == 10
		}
		if ip := str(d, "IpAddress"); ip != "-" {
			e.Set("src_endpoint.ip", ip)
		}
		if port, ok := num(d, "IpPort"); ok && port > 0 {
			e.Set("src_endpoint.port", port)
		}
		if ws := str(d, "WorkstationName"); ws != "-" {
			e.Set("src_endpoint.hostname", ws)
		}
		e.Set("auth_protocol", strings.TrimSpace(str(d, "AuthenticationPackageName")))
		e.Set("dst_endpoint.hostname", host)
	case w.channel == "Security" && (w.id == 4634 || w.id == 4647):
		e = ocsf.New(ocsf.Authentication, ocsf.AuthLogoff, "Logoff", w.ts, windowsProduct)
		e.Set("user.name", user("Target"))
		e.Set("user.uid", str(d, "TargetUserSid"))
		e.SetStatus(ocsf.StatusSuccess)
		e.Set("dst_endpoint.hostname", host)
	case w.channel == "Security" && (w.id == 4688 || w.id == 4689):
		act, name := ocsf.ProcessLaunch, "Launch"
		if w.id == 4689 {
			act, name = ocsf.ProcessTerminate, "Terminate"
		}
		e = ocsf.New(ocsf.ProcessActivity, act, name, w.ts, windowsProduct)
		e.Set("actor.user.name", user("Subject"))
		e.Set("actor.user.uid", str(d, "SubjectUserSid"))
		e.Set("device.hostname", host)
		e.Set("device.type_id", 0)
		if w.id == 4688 {
			e.Set("process.file.path", str(d, "NewProcessName"))
			if pid, ok := winPID(d, "NewProcessId"); ok {
				e.Set("process.pid", pid)
			}
			e.Set("process.cmd_line", str(d, "CommandLine"))
			e.Set("process.parent_process.file.path", str(d, "ParentProcessName"))
			if pid, ok := winPID(d, "ProcessId"); ok {
				e.Set("process.parent_process.pid", pid)
			}
		} else {
			e.Set("process.file.path", str(d, "ProcessName"))
			if pid, ok := winPID(d, "ProcessId"); ok {
				e.Set("process.pid", pid)
			}
		}
	case w.channel == sysmonChannel && (w.id == 1 || w.id == 5):
		act, name := ocsf.ProcessLaunch, "Launch"
		if w.id == 5 {
			act, name = ocsf.ProcessTerminate, "Terminate"
		}
		e = ocsf.New(ocsf.ProcessActivity, act, name, w.ts, windowsProduct)
		e.Set("actor.user.name", str(d, "User"))
		e.Set("device.hostname", host)
		e.Set("device.type_id", 0)
		e.Set("process.file.path", str(d, "Image"))
		e.Set("process.uid", str(d, "ProcessGuid"))
		setNum(e, "process.pid", d, "ProcessId")
		e.Set("process.cmd_line", str(d, "CommandLine"))
		e.Set("process.cwd", str(d, "CurrentDirectory"))
		e.Set("process.user.name", str(d, "User"))
		e.Set("process.parent_process.file.path", str(d, "ParentImage"))
		e.Set("process.parent_process.cmd_line", str(d, "ParentCommandLine"))
		e.Set("process.parent_process.uid", str(d, "ParentProcessGuid"))
		setNum(e, "process.parent_process.pid", d, "ParentProcessId")
	case w.channel == sysmonChannel && w.id == 3:
		e = ocsf.New(ocsf.NetworkActivity, ocsf.NetworkOpen, "Open", w.ts, windowsProduct)
		e.Set("src_endpoint.ip", str(d, "SourceIp"))
		setNum(e, "src_endpoint.port", d, "SourcePort")
		e.Set("src_endpoint.hostname", str(d, "SourceHostname"))
		e.Set("dst_endpoint.ip", str(d, "DestinationIp"))
		setNum(e, "dst_endpoint.port", d, "DestinationPort")
		e.Set("dst_endpoint.hostname", str(d, "DestinationHostname"))
		e.Set("connection_info.protocol_name", str(d, "Protocol"))
		if str(d, "Initiated") == "true" {
			e.Set("connection_info.direction_id", 2) // outbound
		}
		e.Set("actor.process.file.path", str(d, "Image"))
		setNum(e, "actor.process.pid", d, "ProcessId")
		e.Set("actor.user.name", str(d, "User"))
		e.Set("device.hostname", host)
	case w.channel == sysmonChannel && w.id == 22:
		e = ocsf.New(ocsf.DNSActivity, ocsf.DNSQuery, "Query", w.ts, windowsProduct)
		e.Set("query.hostname", str(d, "QueryName"))
		if res := str(d, "QueryResults"); res != "" && res != "-" {
			var answers []map[string]any
			for _, a := range strings.Split(res, ";") {
				if a = strings.TrimSpace(a); a != "" {
					answers = append(answers, map[string]any{"rdata": a})
				}
			}
			e["answers"] = answers
		}
		setNum(e, "rcode_id", d, "QueryStatus")
		e.Set("actor.process.file.path", str(d, "Image"))
		setNum(e, "actor.process.pid", d, "ProcessId")
		e.Set("src_endpoint.hostname", host)
		e.Set("device.hostname", host)
	default:
		// Every other event (a registry change, an image load, a service
		// install): a generic event with the channel and id that route it,
		// and its data as Sigma's Windows rules name it.
		e = ocsf.New(ocsf.BaseEvent, ocsf.ActivityOther, "Other", w.ts, windowsProduct)
		e.Set("message", w.message)
		setHost(e, host)
	}
	e.Set("metadata.event_code", strconv.Itoa(w.id))
	e.Set("metadata.log_name", w.channel)
	e.Set("metadata.log_provider", w.provider)
	e["unmapped"] = d
	return finish(SourceWinlog, host, raw, e)
}
