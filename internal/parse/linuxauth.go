package parse

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Linux authentication messages as sshd and sudo write them to syslog
// (auth/authpriv facilities, /var/log/auth.log or /var/log/secure).

var linuxProduct = ocsf.Product{Name: "Linux", Vendor: "Linux"}

var (
	sshAccepted = regexp.MustCompile(`^Accepted (\S+) for (\S+) from (\S+) port (\d+)(?: (\S+?))?(?::|$)`)
	sshFailed   = regexp.MustCompile(`^Failed (\S+) for (invalid user )?(\S*) from (\S+) port (\d+)(?: (\S+))?`)
	sshInvalid  = regexp.MustCompile(`^Invalid user (\S*) from (\S+)(?: port (\d+))?`)
	sshClosed   = regexp.MustCompile(`^pam_unix\(sshd:session\): session closed for user (\S+)`)
	sudoPAMFail = regexp.MustCompile(`^pam_unix\(sudo:auth\): authentication failure;.*\bruser=(\S*).*\buser=(\S+)`)
)

// syslogUnmapped is the syslog header as OCSF "unmapped" keeps it.
func syslogUnmapped(m SyslogMessage) map[string]any {
	u := map[string]any{
		"facility": m.Facility, "severity": m.Severity, "app_name": m.AppName, "hostname": m.Hostname, "message": m.Msg,
	}
	for k, v := range map[string]string{"proc_id": m.ProcID, "msg_id": m.MsgID} {
		if v != "" {
			u[k] = v
		}
	}
	if m.StructuredData != "" && m.StructuredData != "-" {
		u["structured_data"] = m.StructuredData
	}
	return u
}

func (p *Parsers) linuxAuth(m SyslogMessage, raw []byte) Result {
	app := strings.ToLower(m.AppName)
	if app == "sudo" {
		return p.sudo(m, raw)
	}
	auth := func(act int, name string, status int, user string) ocsf.Event {
		e := ocsf.New(ocsf.Authentication, act, name, m.Timestamp, linuxProduct)
		e.SetStatus(status)
		if status == ocsf.StatusFailure {
			e.SetSeverity(ocsf.SeverityLow)
		}
		e.Set("user.name", user)
		e.Set("dst_endpoint.hostname", m.Hostname)
		e.Set("service.name", m.AppName)
		setSyslogSource(e, m)
		e["unmapped"] = syslogUnmapped(m)
		return e
	}
	src := func(e ocsf.Event, ip, port string) {
		e.Set("src_endpoint.ip", ip)
		if n, err := strconv.Atoi(port); err == nil {
			e.Set("src_endpoint.port", n)
		}
		e["is_remote"] = true
	}
	msg := m.Msg
	if g := sshAccepted.FindStringSubmatch(msg); g != nil {
		e := auth(ocsf.AuthLogon, "Logon", ocsf.StatusSuccess, g[2])
		e.Set("auth_protocol", g[1])
		src(e, g[3], g[4])
		return finish(SourceSyslog, m.Hostname, raw, e)
	}
	if g := sshFailed.FindStringSubmatch(msg); g != nil {
		e := auth(ocsf.AuthLogon, "Logon", ocsf.StatusFailure, g[3])
		e.Set("auth_protocol", g[1])
		detail := "failed " + g[1]
		if g[2] != "" {
			detail = "invalid user"
		}
		e.Set("status_detail", detail)
		src(e, g[4], g[5])
		return finish(SourceSyslog, m.Hostname, raw, e)
	}
	if g := sshInvalid.FindStringSubmatch(msg); g != nil {
		e := auth(ocsf.AuthLogon, "Logon", ocsf.StatusFailure, g[1])
		e.Set("status_detail", "invalid user")
		src(e, g[2], g[3])
		return finish(SourceSyslog, m.Hostname, raw, e)
	}
	if g := sshClosed.FindStringSubmatch(msg); g != nil {
		e := auth(ocsf.AuthLogoff, "Logoff", ocsf.StatusSuccess, g[1])
		return finish(SourceSyslog, m.Hostname, raw, e)
	}
	// Any other message (a protocol error, a disconnect) is still sshd's:
	// a generic event, for the rules on sshd's messages.
	return p.syslogBase(m, raw, linuxProduct)
}

// sudo logs "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls -l"
// for a command it runs (Process Activity: Launch) and the same with a
// leading "3 incorrect password attempts ;" when authentication fails.
func (p *Parsers) sudo(m SyslogMessage, raw []byte) Result {
	msg := m.Msg
	if g := sudoPAMFail.FindStringSubmatch(msg); g != nil {
		e := ocsf.New(ocsf.Authentication, ocsf.AuthLogon, "Logon", m.Timestamp, linuxProduct)
		e.SetStatus(ocsf.StatusFailure)
		e.SetSeverity(ocsf.SeverityLow)
		e.Set("status_detail", "authentication failure")
		e.Set("user.name", g[2])
		e.Set("service.name", "sudo")
		e.Set("dst_endpoint.hostname", m.Hostname)
		setSyslogSource(e, m)
		e["unmapped"] = syslogUnmapped(m)
		return finish(SourceSyslog, m.Hostname, raw, e)
	}
	colon := strings.Index(msg, " : ")
	if colon <= 0 {
		return p.syslogBase(m, raw, linuxProduct)
	}
	invoker := strings.TrimSpace(msg[:colon])
	kv := map[string]string{}
	var notes []string
	for _, part := range strings.Split(msg[colon+3:], " ; ") {
		part = strings.TrimSpace(part)
		if k, v, ok := strings.Cut(part, "="); ok && k == strings.ToUpper(k) && !strings.Contains(k, " ") {
			kv[k] = v
		} else if part != "" {
			notes = append(notes, part)
		}
	}
	cmd, ok := kv["COMMAND"]
	if !ok {
		return p.syslogBase(m, raw, linuxProduct)
	}
	u := syslogUnmapped(m)
	for k, v := range kv {
		u[k] = v // sudo's own names (USER, COMMAND, PWD, TTY), as Sigma's sudo rules use them
	}
	if len(notes) > 0 {
		// "3 incorrect password attempts", "user NOT in sudoers", ...
		e := ocsf.New(ocsf.Authentication, ocsf.AuthLogon, "Logon", m.Timestamp, linuxProduct)
		e.SetStatus(ocsf.StatusFailure)
		e.SetSeverity(ocsf.SeverityLow)
		e.Set("status_detail", strings.Join(notes, "; "))
		e.Set("user.name", invoker)
		e.Set("service.name", "sudo")
		e.Set("dst_endpoint.hostname", m.Hostname)
		setSyslogSource(e, m)
		e["unmapped"] = u
		return finish(SourceSyslog, m.Hostname, raw, e)
	}
	e := ocsf.New(ocsf.ProcessActivity, ocsf.ProcessLaunch, "Launch", m.Timestamp, linuxProduct)
	e.Set("actor.user.name", invoker)
	e.Set("device.hostname", m.Hostname)
	e.Set("device.type_id", 0)
	e.Set("process.cmd_line", cmd)
	if f := strings.Fields(cmd); len(f) > 0 {
		e.Set("process.file.path", f[0])
	}
	e.Set("process.user.name", kv["USER"])
	e.Set("process.cwd", kv["PWD"])
	setSyslogSource(e, m)
	e["unmapped"] = u
	return finish(SourceSyslog, m.Hostname, raw, e)
}
