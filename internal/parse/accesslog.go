package parse

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Web server access logs in the Common or Combined Log Format (Apache's
// and nginx's default, optionally with Apache's "vhost:port" first), as
// lines (?source=access, HEC sourcetype access_combined) or as syslog
// messages of the server's program. A request becomes HTTP Activity;
// any other line of the server (its error log) a Base Event of that
// product. The server's product routes both to Sigma's webserver
// category and apache or nginx service.

// webServers names the product of a web server's syslog program.
var webServers = map[string]string{
	"nginx": "nginx", "apache2": "Apache HTTP Server", "httpd": "Apache HTTP Server", "apache": "Apache HTTP Server",
}

// webProduct is the product of an access log whose server is not known.
const webProduct = "Web Server"

var accessRE = regexp.MustCompile(`^(?:(\S+) )?(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}|-) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?`)

// accessMessage maps a syslog message of a web server.
func (p *Parsers) accessMessage(m SyslogMessage, frame []byte) Result {
	return p.accessLine([]byte(m.Msg), m.Hostname, strings.ToLower(m.AppName), frame)
}

// accessLine maps one access log line; host is the server, program its
// syslog program ("" when unknown).
func (p *Parsers) accessLine(line []byte, host, program string, raw []byte) Result {
	if !utf8.Valid(line) {
		return fail(SourceAccess, raw, "invalid UTF-8")
	}
	name := webServers[program]
	if name == "" {
		name = webProduct
	}
	product := ocsf.Product{Name: name, Vendor: map[string]string{"nginx": "F5", "Apache HTTP Server": "Apache"}[name]}
	g := accessRE.FindStringSubmatch(string(line))
	if g == nil {
		return p.textBase(SourceAccess, product, "error", host, string(line), raw)
	}
	vhost, client, user, ts, request, status, size := g[1], g[2], g[4], g[5], g[6], g[7], g[8]
	t, err := time.Parse("02/Jan/2006:15:04:05 -0700", ts)
	if err != nil {
		t = p.now()
	}
	method, target, version := "", request, ""
	if f := strings.Fields(request); len(f) == 3 && strings.HasPrefix(f[2], "HTTP/") {
		method, target, version = f[0], f[1], strings.TrimPrefix(f[2], "HTTP/")
	}
	act, actName := httpActivity(method)
	e := ocsf.New(ocsf.HTTPActivity, act, actName, t, product)
	e.Set("src_endpoint.ip", client)
	if user != "-" {
		e.Set("actor.user.name", user)
	}
	e.Set("http_request.http_method", method)
	vh, _, _ := strings.Cut(vhost, ":")
	setURL(e, "http", vh, target)
	e.Set("http_request.version", version)
	if n, err := strconv.Atoi(status); err == nil {
		e.Set("http_response.code", n)
		if n >= 400 {
			e.SetStatus(ocsf.StatusFailure)
		} else {
			e.SetStatus(ocsf.StatusSuccess)
		}
	}
	if n, err := strconv.ParseInt(size, 10, 64); err == nil {
		e.Set("traffic.bytes_in", n)
	}
	unquote := func(s string) string { return strings.ReplaceAll(s, `\"`, `"`) }
	if ref := unquote(g[9]); ref != "-" {
		e.Set("http_request.referrer", ref)
	}
	if ua := unquote(g[10]); ua != "-" {
		e.Set("http_request.user_agent", ua)
	}
	if host != "" {
		e.Set("dst_endpoint.hostname", host)
	}
	e.Set("metadata.log_name", "access")
	e.Set("metadata.log_provider", program)
	if host == "" {
		host = client
	}
	return finish(SourceAccess, host, raw, e)
}
