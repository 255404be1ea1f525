package parse

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Linux audit records (audit.log lines, or the same forwarded by audispd
// over syslog). One kernel event is several records sharing the serial in
// msg=audit(SECONDS.MILLIS:SERIAL); they are grouped before mapping:
// SYSCALL (+EXECVE, CWD, PATH, PROCTITLE) becomes Process Activity,
// USER_LOGIN becomes Authentication, any other event a Base Event. The
// records stay in unmapped.records.<TYPE> (a list when a type repeats, as
// PATH does), their types in unmapped.type: Sigma's auditd rules, written
// against single records (type: EXECVE, a0: chmod), find their fields
// there. log_format=ENRICHED's interpreted fields (after 0x1d: ARCH,
// SYSCALL, AUID, UID ...) are kept too, and SYSCALL is filled in from the
// syscall number on x86_64 when the record lacks it.
//
// Parsers group the records within one input (an audit.log body); records
// that arrive one per syslog message are grouped by the ingest service
// (internal/ingest/audit.go) and handed over with AuditGroup.

var auditProduct = ocsf.Product{Name: "auditd", Vendor: "Linux"}

type auditRecord struct {
	typ    string
	ts     time.Time
	serial string
	fields map[string]string
	order  []string
	line   string
}

// parseAuditLine parses `[node=H ]type=T msg=audit(S.MS:N): k=v ...`.
func parseAuditLine(line string) (auditRecord, error) {
	var r auditRecord
	r.line = line
	r.fields = map[string]string{}
	// ENRICHED format: interpreted fields follow a 0x1d separator.
	kvs := splitAuditKV(strings.ReplaceAll(line, "\x1d", " "))
	for _, kv := range kvs {
		k, v := kv[0], kv[1]
		switch k {
		case "type":
			r.typ = v
		case "msg":
			if strings.HasPrefix(v, "audit(") {
				inner := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(v, "audit("), ":"), ")")
				tsStr, serial, ok := strings.Cut(inner, ":")
				if !ok {
					return r, fmt.Errorf("auditd: bad msg=%q", v)
				}
				secs, err := strconv.ParseFloat(tsStr, 64)
				if err != nil {
					return r, fmt.Errorf("auditd: bad timestamp %q", tsStr)
				}
				r.ts = time.UnixMilli(int64(secs*1000 + 0.5)).UTC()
				r.serial = serial
				continue
			}
			// USER_* records carry their payload as msg='k=v ...'.
			for _, kv := range splitAuditKV(v) {
				r.set(kv[0], kv[1], kv[2] != "")
			}
		default:
			r.set(k, v, kv[2] != "")
		}
	}
	if r.typ == "" || r.serial == "" {
		return r, fmt.Errorf("auditd: not an audit record (no type= or msg=audit(...))")
	}
	return r, nil
}

// set stores a field; auditd hex-encodes unquoted values of fields that
// may hold spaces or specials (comm, exe, EXECVE args, cwd, acct, ...).
func (r *auditRecord) set(k, v string, quoted bool) {
	if !quoted && hexable(r.typ, k) {
		v = unhexAudit(v)
	}
	if _, dup := r.fields[k]; !dup {
		r.order = append(r.order, k)
	}
	r.fields[k] = v
}

// splitAuditKV splits `k=v k2="quoted v" k3='nested k=v'`; the ":" after
// msg=audit(...) is dropped.
func splitAuditKV(s string) [][3]string {
	var out [][3]string
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return out
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return out
		}
		k := s[:eq]
		if sp := strings.LastIndexByte(k, ' '); sp >= 0 {
			k = k[sp+1:]
		}
		s = s[eq+1:]
		var v, quoted string
		if s != "" && (s[0] == '"' || s[0] == '\'') {
			quoted = "q"
			q := s[0]
			end := strings.IndexByte(s[1:], q)
			if end < 0 {
				v, s = s[1:], ""
			} else {
				v, s = s[1:end+1], s[end+2:]
			}
		} else {
			sp := strings.IndexByte(s, ' ')
			if sp < 0 {
				v, s = s, ""
			} else {
				v, s = s[:sp], s[sp:]
			}
			v = strings.TrimSuffix(v, ":")
		}
		out = append(out, [3]string{k, v, quoted})
	}
}

// Auditd parses audit.log lines; host keys events without node=.
func (p *Parsers) Auditd(body []byte, host string) []Result {
	return p.auditd(body, host, nil)
}

// auditd groups lines by serial; frame, when set, is the syslog message
// the lines came in (kept as raw_data instead of the lines).
func (p *Parsers) auditd(body []byte, host string, frame []byte) []Result {
	var out []Result
	groups := map[string][]auditRecord{}
	var order []string
	for _, l := range bytes.Split(body, []byte("\n")) {
		line := strings.TrimSpace(string(l))
		if line == "" {
			continue
		}
		r, err := parseAuditLine(line)
		if err != nil {
			raw := []byte(line)
			if frame != nil {
				raw = frame
			}
			out = append(out, p.auditText(line, host, raw))
			continue
		}
		if _, ok := groups[r.serial]; !ok {
			order = append(order, r.serial)
		}
		groups[r.serial] = append(groups[r.serial], r)
	}
	for _, serial := range order {
		out = append(out, p.auditEvent(groups[serial], host, frame))
	}
	return out
}

func (p *Parsers) auditEvent(recs []auditRecord, host string, frame []byte) Result {
	var lines, types []string
	byType := map[string]auditRecord{}
	records := map[string]any{}
	for _, r := range recs {
		lines = append(lines, r.line)
		if _, seen := byType[r.typ]; !seen {
			types = append(types, r.typ)
		}
		byType[r.typ] = r
		if n := r.fields["node"]; n != "" {
			host = n
		}
		if r.typ == "SYSCALL" && r.fields["SYSCALL"] == "" {
			if name := syscallName(r.fields["arch"], r.fields["syscall"]); name != "" {
				r.set("SYSCALL", name, true)
			}
		}
		fm := map[string]any{}
		for _, k := range r.order {
			fm[k] = r.fields[k]
		}
		switch prev := records[r.typ].(type) {
		case nil:
			records[r.typ] = fm
		case map[string]any:
			records[r.typ] = []any{prev, fm}
		case []any:
			records[r.typ] = append(prev, fm)
		}
	}
	typeList := make([]any, len(types))
	for i, t := range types {
		typeList[i] = t
	}
	unmapped := map[string]any{"serial": recs[0].serial, "type": typeList, "records": records}
	raw := []byte(strings.Join(lines, "\n"))
	if frame != nil {
		raw = frame
	}
	ts := recs[0].ts
	if sc, ok := byType["SYSCALL"]; ok {
		f := sc.fields
		e := ocsf.New(ocsf.ProcessActivity, ocsf.ProcessLaunch, "Launch", ts, auditProduct)
		if _, exec := byType["EXECVE"]; !exec && f["syscall"] != "59" && f["syscall"] != "execve" && f["syscall"] != "322" {
			// A syscall that is not execve: still process activity, of a
			// kind OCSF has no activity for.
			e = ocsf.New(ocsf.ProcessActivity, ocsf.ActivityOther, "Other", ts, auditProduct)
		}
		e.Set("actor.user.uid", f["auid"])
		e.Set("actor.user.name", absent(f["AUID"]))
		e.Set("actor.session.uid", f["ses"])
		e.Set("device.hostname", host)
		e.Set("device.type_id", 0)
		setIntField(e, "process.pid", f["pid"])
		setIntField(e, "process.parent_process.pid", f["ppid"])
		e.Set("process.name", absent(f["comm"]))
		e.Set("process.file.path", absent(f["exe"]))
		e.Set("process.user.uid", f["uid"])
		e.Set("process.user.name", absent(f["UID"]))
		if ex, ok := byType["EXECVE"]; ok {
			argc, _ := strconv.Atoi(ex.fields["argc"])
			args := make([]string, 0, argc)
			for i := 0; i < argc; i++ {
				args = append(args, ex.fields["a"+strconv.Itoa(i)])
			}
			e.Set("process.cmd_line", strings.Join(args, " "))
		}
		if cwd, ok := byType["CWD"]; ok {
			e.Set("process.cwd", absent(cwd.fields["cwd"]))
		}
		if f["success"] == "no" {
			e.SetStatus(ocsf.StatusFailure)
		} else {
			e.SetStatus(ocsf.StatusSuccess)
		}
		e.Set("metadata.log_name", "audit")
		e.Set("metadata.event_code", "SYSCALL")
		e["unmapped"] = unmapped
		return finish(SourceAuditd, host, raw, e)
	}
	if ul, ok := byType["USER_LOGIN"]; ok {
		f := ul.fields
		e := ocsf.New(ocsf.Authentication, ocsf.AuthLogon, "Logon", ts, auditProduct)
		e.Set("user.name", absent(f["acct"]))
		e.Set("user.uid", f["id"])
		if a := f["addr"]; a != "?" && a != "" {
			e.Set("src_endpoint.ip", a)
		}
		if h := f["hostname"]; h != "?" && h != "" {
			e.Set("src_endpoint.hostname", h)
		}
		e.Set("dst_endpoint.hostname", host)
		e.Set("service.name", absent(f["exe"]))
		if f["res"] == "success" {
			e.SetStatus(ocsf.StatusSuccess)
		} else {
			e.SetStatus(ocsf.StatusFailure)
			e.SetSeverity(ocsf.SeverityLow)
		}
		e.Set("metadata.log_name", "audit")
		e.Set("metadata.event_code", "USER_LOGIN")
		e["unmapped"] = unmapped
		return finish(SourceAuditd, host, raw, e)
	}
	// Any other event (SERVICE_STOP, USER_AUTH, CONFIG_CHANGE ...): a
	// generic event with its records.
	e := ocsf.New(ocsf.BaseEvent, ocsf.ActivityOther, "Other", ts, auditProduct)
	e.Set("message", strings.Join(types, " "))
	e.Set("metadata.log_name", "audit")
	e.Set("metadata.event_code", types[0])
	setHost(e, host)
	e["unmapped"] = unmapped
	return finish(SourceAuditd, host, raw, e)
}

// auditText is a line of the audit log that is not a record (a kernel
// notice such as "audit: backlog limit exceeded"): a generic event.
func (p *Parsers) auditText(line, host string, raw []byte) Result {
	e := ocsf.New(ocsf.BaseEvent, ocsf.ActivityOther, "Other", p.now(), auditProduct)
	e.Set("message", line)
	e.Set("metadata.log_name", "audit")
	setHost(e, host)
	return finish(SourceAuditd, host, raw, e)
}

// unhexAudit decodes auditd's hex encoding of an unquoted value (even
// length, all upper-case hex digits). Plain unquoted numbers of even
// length ("1000") are ambiguous; they are only decoded when the result is
// printable text, which excludes most numbers.
func unhexAudit(v string) string {
	if len(v) >= 2 && len(v)%2 == 0 && strings.Trim(v, "0123456789ABCDEF") == "" {
		if b, err := hex.DecodeString(v); err == nil && printable(b) {
			return strings.ReplaceAll(string(b), "\x00", " ")
		}
	}
	return v
}

func setIntField(e ocsf.Event, path, v string) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		e.Set(path, n)
	}
}

// printable reports whether b is text (NULs separate proctitle args).
func printable(b []byte) bool {
	for _, c := range b {
		if c != 0 && (c < 0x20 || c > 0x7e) {
			return false
		}
	}
	return true
}

// hexable lists the fields auditd may hex-encode.
func hexable(typ, k string) bool {
	switch k {
	case "comm", "exe", "cwd", "acct", "proctitle", "name", "cmd", "terminal":
		return true
	}
	if typ == "EXECVE" && len(k) >= 2 && k[0] == 'a' {
		_, err := strconv.Atoi(k[1:])
		return err == nil
	}
	return false
}

// absent maps auditd's "no value" spellings to "".
func absent(v string) string {
	if v == "(null)" || v == "?" {
		return ""
	}
	return v
}

// AuditRecord reports whether a syslog message carries one audit record
// (audispd's syslog plugin and rsyslog's imfile send one record per
// message), returning the record line and the host. The ingest service
// uses it to group records of one event across messages before parsing.
func (p *Parsers) AuditRecord(frame []byte, remoteHost string) (line, host string, ok bool) {
	if !utf8.Valid(frame) {
		return "", "", false
	}
	m := ParseSyslogLine(frame, p.now())
	if !isAuditMessage(m) {
		return "", "", false
	}
	host = m.Hostname
	if host == "" {
		host = remoteHost
	}
	return strings.TrimSpace(m.Msg), host, true
}

func isAuditMessage(m SyslogMessage) bool {
	app := strings.ToLower(m.AppName)
	return app == "audispd" || app == "auditd" || app == "audit" || strings.HasPrefix(m.Msg, "type=") || strings.HasPrefix(m.Msg, "node=")
}

// AuditSerial returns the event serial and record type of an audit line.
func AuditSerial(line string) (serial, typ string, err error) {
	r, err := parseAuditLine(line)
	return r.serial, r.typ, err
}

// AuditGroup parses the records of one audit event that arrived in
// separate syslog messages; raw (the messages, one per line) becomes
// raw_data.
func (p *Parsers) AuditGroup(lines []string, host string, raw []byte) []Result {
	return p.auditd([]byte(strings.Join(lines, "\n")), host, raw)
}

// syscallName names a syscall number of the arch auditd records, as
// log_format=ENRICHED would (SYSCALL=memfd_create): Sigma's auditd rules
// match the name. Only x86_64 (arch c000003e) is known, and only the
// calls audit rules commonly watch.
func syscallName(arch, nr string) string {
	if !strings.EqualFold(arch, "c000003e") {
		return ""
	}
	n, err := strconv.Atoi(nr)
	if err != nil {
		return ""
	}
	return x8664Syscalls[n]
}

var x8664Syscalls = map[int]string{
	0: "read", 1: "write", 2: "open", 3: "close", 4: "stat", 5: "fstat", 6: "lstat", 9: "mmap", 10: "mprotect",
	21: "access", 22: "pipe", 32: "dup", 33: "dup2", 39: "getpid", 41: "socket", 42: "connect", 43: "accept",
	44: "sendto", 45: "recvfrom", 49: "bind", 50: "listen", 56: "clone", 57: "fork", 58: "vfork", 59: "execve",
	60: "exit", 62: "kill", 63: "uname", 76: "truncate", 77: "ftruncate", 80: "chdir", 82: "rename", 83: "mkdir",
	84: "rmdir", 85: "creat", 86: "link", 87: "unlink", 88: "symlink", 89: "readlink", 90: "chmod", 91: "fchmod",
	92: "chown", 93: "fchown", 94: "lchown", 95: "umask", 99: "sysinfo", 101: "ptrace", 103: "syslog",
	105: "setuid", 106: "setgid", 113: "setreuid", 114: "setregid", 117: "setresuid", 119: "setresgid",
	133: "mknod", 135: "personality", 155: "pivot_root", 157: "prctl", 161: "chroot", 165: "mount",
	166: "umount2", 169: "reboot", 170: "sethostname", 175: "init_module", 176: "delete_module",
	188: "setxattr", 257: "openat", 258: "mkdirat", 259: "mknodat", 260: "fchownat", 263: "unlinkat",
	264: "renameat", 265: "linkat", 266: "symlinkat", 268: "fchmodat", 272: "unshare", 288: "accept4",
	298: "perf_event_open", 308: "setns", 310: "process_vm_readv", 311: "process_vm_writev",
	313: "finit_module", 316: "renameat2", 319: "memfd_create", 321: "bpf", 322: "execveat",
}
