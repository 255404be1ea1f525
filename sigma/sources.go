package sigma

import (
	"maps"
	"slices"
	"strings"
)

// DefaultLogsources is the table the engine routes by unless its Config
// names another: the sources `vigil ingest` writes (OCSF events carrying
// metadata.product.name, log_name, log_provider and class_uid), the same
// logs in their native JSON where they say what they are (Zeek's _path,
// CloudTrail's eventSource), and Windows event logs by Channel and
// EventID (evtx_dump, winlogbeat and the OCSF events of both). Product,
// service and category names are SigmaHQ's taxonomy.
func DefaultLogsources() *LogsourceTable {
	var s []Source
	s = append(s, linuxSources()...)
	s = append(s, zeekSources()...)
	s = append(s, cloudSources()...)
	s = append(s, networkSources()...)
	s = append(s, windowsSources()...)
	// An OCSF event of a product no source above names: no rule with a
	// product, service or category applies to it.
	s = append(s, Source{Name: "ocsf", Match: []map[string]string{{fProduct: "*"}}})
	return &LogsourceTable{Sources: s}
}

// Field names of the source an OCSF event records (metadata) and of its
// class, as the default mapping resolves them.
const (
	fProduct  = "metadata.product.name"
	fLogName  = "metadata.log_name"
	fProvider = "metadata.log_provider"
	fClass    = "class_uid"
	fActivity = "activity_id"
)

// processFields maps Sigma's process_creation fields onto an OCSF Process
// Activity event (pySigma's names for Linux process creation: Image,
// CommandLine, User, CurrentDirectory, ParentImage ...).
var processFields = map[string][]string{
	"Image":             {"process.file.path"},
	"CommandLine":       {"process.cmd_line"},
	"User":              {"process.user.name"},
	"CurrentDirectory":  {"process.cwd"},
	"ProcessId":         {"process.pid"},
	"ParentImage":       {"process.parent_process.file.path"},
	"ParentCommandLine": {"process.parent_process.cmd_line"},
	"ParentProcessId":   {"process.parent_process.pid"},
	"LogonId":           {"actor.session.uid"},
}

// linuxSources are syslog's programs (OCSF events of product "Linux", the
// program in metadata.log_provider, the facility in metadata.log_name)
// and the audit framework (product "auditd").
func linuxSources() []Source {
	prog := func(name string, services []string, programs ...string) Source {
		src := Source{Name: "linux/" + name, Product: "linux", Services: services}
		for _, p := range programs {
			src.Match = append(src.Match, map[string]string{fProduct: "Linux", fProvider: p})
		}
		return src
	}
	sudoExec := Source{
		Name: "linux/sudo/process_creation", Product: "linux",
		Services: []string{"sudo", "auth", "syslog"}, Categories: []string{"process_creation"},
		Match:  []map[string]string{{fProduct: "Linux", fProvider: "sudo", fClass: "1007"}},
		Fields: processFields,
	}
	auditExec := Source{
		Name: "linux/auditd/process_creation", Product: "linux",
		Services: []string{"auditd"}, Categories: []string{"process_creation"},
		Match:  []map[string]string{{fProduct: "auditd", fClass: "1007", fActivity: "1"}},
		Fields: processFields,
	}
	cron := prog("cron", []string{"cron", "syslog"}, "cron", "crond", "anacron")
	cron.Match = append(cron.Match, map[string]string{fProduct: "Linux", fLogName: "cron"})
	auth := Source{Name: "linux/auth", Product: "linux", Services: []string{"auth", "syslog"},
		Match: []map[string]string{{fProduct: "Linux", fLogName: "auth"}, {fProduct: "Linux", fLogName: "authpriv"},
			// Lines of the file syslog writes them to (vigil ingest --file).
			{fProduct: "Linux", fLogName: "/var/log/auth.log"}, {fProduct: "Linux", fLogName: "/var/log/secure"}}}
	return []Source{
		sudoExec,
		auditExec,
		{Name: "linux/auditd", Product: "linux", Services: []string{"auditd"}, Match: []map[string]string{{fProduct: "auditd"}}},
		// OpenSSH 9.8 logs a session's messages as sshd-session.
		prog("sshd", []string{"sshd", "auth", "syslog"}, "sshd", "sshd-session"),
		prog("sudo", []string{"sudo", "auth", "syslog"}, "sudo"),
		cron,
		prog("vsftpd", []string{"vsftpd", "syslog"}, "vsftpd"),
		prog("clamav", []string{"clamav", "syslog"}, "clamd", "freshclam", "clamav-milter", "clamav", "clamdscan", "clamscan"),
		prog("guacamole", []string{"guacamole", "syslog"}, "guacd", "guacamole"),
		auth,
		{Name: "linux/syslog", Product: "linux", Services: []string{"syslog"}, Match: []map[string]string{{fProduct: "Linux"}}},
	}
}

// zeekLogs are the logs Zeek writes (each a Sigma service of product
// zeek), with the product-less categories SigmaHQ's Zeek pipelines serve
// from them.
var zeekLogs = map[string][]string{
	"conn": {"firewall"}, "dns": {"dns"}, "http": {"proxy", "webserver"},
	"dce_rpc": nil, "dhcp": nil, "dnp3": nil, "dpd": nil, "files": nil, "ftp": nil, "intel": nil, "irc": nil,
	"kerberos": nil, "known_certs": nil, "known_hosts": nil, "known_services": nil, "modbus": nil, "mysql": nil,
	"notice": nil, "ntlm": nil, "ntp": nil, "ocsp": nil, "pe": nil, "quic": nil, "radius": nil, "rdp": nil, "rfb": nil,
	"sip": nil, "smb_files": nil, "smb_mapping": nil, "smtp": nil, "snmp": nil, "socks": nil, "software": nil,
	"ssh": nil, "ssl": nil, "syslog": nil, "traceroute": nil, "tunnel": nil, "weird": nil, "x509": nil,
}

// zeekHTTPFields are the proxy and webserver fields (W3C extended log
// names) in Zeek's http log.
var zeekHTTPFields = map[string][]string{
	"c-uri": {"uri"}, "cs-uri": {"uri"}, "c-uri-query": {"http_request.url.query_string"},
	"cs-uri-query": {"http_request.url.query_string"}, "cs-uri-stem": {"http_request.url.path"},
	"cs-host": {"host"}, "r-dns": {"host"},
	"c-useragent": {"user_agent"}, "cs-user-agent": {"user_agent"}, "cs-method": {"method"},
	"sc-status": {"status_code"}, "cs-referrer": {"referrer"}, "cs-referer": {"referrer"},
	"cs-username": {"username"}, "src_ip": {"id.orig_h"}, "dst_ip": {"id.resp_h"}, "dst_port": {"id.resp_p"},
}

func zeekSources() []Source {
	var out []Source
	for _, log := range slices.Sorted(maps.Keys(zeekLogs)) {
		src := Source{
			Name: "zeek/" + log, Product: "zeek", Services: []string{log}, Categories: zeekLogs[log],
			Match: []map[string]string{{fProduct: "Zeek", fLogName: log}, {"_path": log}},
		}
		switch log {
		case "http":
			src.Fields = zeekHTTPFields
		case "dns":
			src.Fields = map[string][]string{"answer": {"answers"}, "record_type": {"qtype_name"}}
		case "conn":
			src.Fields = map[string][]string{"src_ip": {"id.orig_h"}, "dst_ip": {"id.resp_h"}, "src_port": {"id.orig_p"}, "dst_port": {"id.resp_p"}}
		}
		out = append(out, src)
	}
	// A log of a script or plugin this table does not name.
	return append(out, Source{Name: "zeek", Product: "zeek", Match: []map[string]string{{fProduct: "Zeek"}}})
}

// cloudSources are cloud and SaaS audit logs: the product ingest names
// and, where one product has several logs, the log in metadata.log_name.
func cloudSources() []Source {
	one := func(name, product, service, ocsfProduct string, logNames ...string) Source {
		src := Source{Name: name, Product: product, Services: []string{service}}
		if len(logNames) == 0 {
			src.Match = []map[string]string{{fProduct: ocsfProduct}}
		}
		for _, l := range logNames {
			src.Match = append(src.Match, map[string]string{fProduct: ocsfProduct, fLogName: l})
		}
		return src
	}
	trail := one("aws/cloudtrail", "aws", "cloudtrail", "CloudTrail")
	// CloudTrail records as AWS writes them (offline files).
	trail.Match = append(trail.Match, map[string]string{"eventSource": "*", "eventName": "*", "awsRegion": "*"})
	okta := one("okta", "okta", "okta", "Okta")
	// Okta System Log records as the API returns them.
	okta.Match = append(okta.Match, map[string]string{"eventType": "*", "legacyEventType": "*", "displayMessage": "*"})
	azure := func(service string, fields map[string][]string) Source {
		src := one("azure/"+service, "azure", service, "Azure", service)
		src.Fields = fields
		return src
	}
	m365 := func(service string, services ...string) Source {
		src := one("m365/"+service, "m365", service, "Microsoft 365", service)
		src.Services = append(src.Services, services...)
		src.Fields = m365Fields
		return src
	}
	gcp := one("gcp/audit", "gcp", "gcp.audit", "Google Cloud", "gcp.audit")
	gcp.Fields = map[string][]string{
		// Elastic's and the Pub/Sub export's names for the LogEntry's.
		"gcp.audit.method_name":                          {"protoPayload.methodName"},
		"data.protoPayload.authorizationInfo.permission": {"protoPayload.authorizationInfo.permission"},
		"data.protoPayload.authorizationInfo.granted":    {"protoPayload.authorizationInfo.granted"},
		"data.protoPayload.serviceName":                  {"protoPayload.serviceName"},
		"data.protoPayload.methodName":                   {"protoPayload.methodName"},
		"data.protoPayload.resource.type":                {"resource.type"},
		"data.protoPayload.logName":                      {"logName"},
	}
	workspace := map[string][]string{
		"eventService": {"protoPayload.serviceName"}, "eventName": {"protoPayload.metadata.event.eventName"},
		"protoPayload.Servicename": {"protoPayload.serviceName"},
	}
	wsAdmin := one("gcp/google_workspace.admin", "gcp", "google_workspace.admin", "Google Workspace", "admin")
	wsAdmin.Fields = workspace
	wsLogin := one("gcp/google_workspace.login", "gcp", "google_workspace.login", "Google Workspace", "login")
	wsLogin.Fields = workspace
	return []Source{
		trail,
		azure("activitylogs", azureActivityFields),
		azure("auditlogs", azureAuditFields),
		azure("signinlogs", azureSigninFields),
		azure("riskdetection", map[string][]string{"riskEventType": {"properties.riskEventType"}}),
		azure("pim", map[string][]string{"riskEventType": {"properties.riskEventType"}}),
		gcp, wsAdmin, wsLogin,
		m365("audit"),
		m365("exchange", "audit"),
		m365("threat_management", "audit"),
		m365("threat_detection", "audit"),
		okta,
		one("github/audit", "github", "audit", "GitHub"),
	}
}

// Azure's rules name fields as Log Analytics tables do (ResultType,
// OperationName, Status) where the diagnostic export writes them camel
// case, most of them under properties (pySigma's Azure pipelines map the
// same way).
var (
	azureSigninFields = map[string][]string{
		"ResultType": {"resultType"}, "resultType": {"properties.status.errorCode"},
		"ResultDescription": {"resultDescription", "properties.status.failureReason"}, "Resultdescription": {"resultDescription"},
		"Status": {"properties.status.failureReason"}, "AuthenticationRequirement": {"properties.authenticationRequirement"},
		"conditionalAccessStatus": {"properties.conditionalAccessStatus"}, "ConditionalAccessStatus": {"properties.conditionalAccessStatus"},
		"userAgent": {"properties.userAgent"}, "location": {"properties.location.countryOrRegion"},
		"DeviceDetail.trusttype": {"properties.deviceDetail.trustType"}, "DeviceDetail.deviceId": {"properties.deviceDetail.deviceId"},
		"DeviceDetail.isCompliant": {"properties.deviceDetail.isCompliant"}, "ClientApp": {"properties.clientAppUsed"},
		"ResourceDisplayName": {"properties.resourceDisplayName"}, "RiskState": {"properties.riskState"},
		"Username": {"properties.userPrincipalName"}, "NetworkLocationDetails": {"properties.networkLocationDetails"},
		"ActivityDetails": {"properties.activityDetails"}, "homeTenantId": {"properties.homeTenantId"},
		"resourceTenantId": {"properties.resourceTenantId"}, "properties.message": {"operationName"},
	}
	azureAuditFields = map[string][]string{
		"properties.message": {"operationName"}, "OperationName": {"operationName"}, "operationName": {"properties.activityDisplayName"},
		"Category": {"properties.category"}, "category": {"properties.category"}, "Status": {"properties.result"},
		"LoggedByService": {"properties.loggedByService"}, "ActivityDisplayName": {"properties.activityDisplayName"},
		"ActivityType": {"properties.activityDisplayName"}, "activityType": {"properties.activityDisplayName"},
		"TargetResources": {"properties.targetResources"}, "targetResources.type": {"properties.targetResources.type"},
		"TargetResources.ModifiedProperties.DisplayName": {"properties.targetResources.modifiedProperties.displayName"},
		"TargetResources.ModifiedProperties.NewValue":    {"properties.targetResources.modifiedProperties.newValue"},
		"TargetResources.modifiedProperties.newValue":    {"properties.targetResources.modifiedProperties.newValue"},
		"Initiatedby":                      {"properties.initiatedBy.user.userPrincipalName"},
		"additionalDetails.additionalInfo": {"properties.additionalDetails.value"},
	}
	azureActivityFields = map[string][]string{
		"CategoryValue": {"category"}, "OperationNameValue": {"operationName"}, "ResourceId": {"resourceId"},
		"ResourceProviderValue": {"properties.resourceProviderName", "resourceProviderName.value"},
		"properties.message":    {"operationName"},
	}
	// m365Fields: the rules of the exchange and threat services name the
	// workload eventSource, the operation (or alert) eventName, the result
	// status.
	m365Fields = map[string][]string{
		"eventSource": {"Workload"}, "eventName": {"Operation", "Name"}, "status": {"ResultStatus", "Status"},
	}
)

// webserverFields are the webserver taxonomy's fields (W3C extended log
// names) in an OCSF HTTP Activity event of a web server's access log.
var webserverFields = map[string][]string{
	"cs-uri-query": {"http_request.url.query_string"}, "cs-uri-stem": {"http_request.url.path"},
	"cs-uri": {"http_request.url.url_string"}, "c-uri": {"http_request.url.url_string"},
	"cs-method": {"http_request.http_method"}, "sc-status": {"http_response.code"},
	"cs-user-agent": {"http_request.user_agent"}, "c-useragent": {"http_request.user_agent"},
	"cs-referer": {"http_request.referrer"}, "cs-username": {"actor.user.name"},
	"cs-host": {"http_request.url.hostname"}, "cs-version": {"http_request.version"}, "c-ip": {"src_endpoint.ip"},
}

// networkSources serve the product-less categories from OCSF classes:
// web server and proxy access logs, and DNS activity of any product the
// table does not name otherwise.
func networkSources() []Source {
	return []Source{
		{Name: "web/apache", Services: []string{"apache"}, Categories: []string{"webserver"},
			Match: []map[string]string{{fProduct: "Apache HTTP Server"}}, Fields: webserverFields},
		{Name: "web/nginx", Services: []string{"nginx"}, Categories: []string{"webserver"},
			Match: []map[string]string{{fProduct: "nginx"}}, Fields: webserverFields},
		{Name: "web", Categories: []string{"webserver"}, Match: []map[string]string{{fProduct: "Web Server"}}, Fields: webserverFields},
		{Name: "proxy/squid", Categories: []string{"proxy"}, Match: []map[string]string{{fProduct: "Squid"}},
			Fields: map[string][]string{
				"c-uri": {"http_request.url.url_string"}, "cs-uri": {"http_request.url.url_string"},
				"c-uri-query": {"http_request.url.query_string"}, "c-uri-stem": {"http_request.url.path"},
				"cs-host": {"http_request.url.hostname"},
				"r-dns":   {"http_request.url.hostname"}, "cs-method": {"http_request.http_method"},
				"sc-status": {"http_response.code"}, "c-useragent": {"http_request.user_agent"},
				"cs-referrer": {"http_request.referrer"}, "cs-cookie": {"http_request.http_headers.cookie"},
				"src_ip": {"src_endpoint.ip"}, "dst_ip": {"dst_endpoint.ip"},
			}},
		{Name: "dns", Categories: []string{"dns"}, Match: []map[string]string{{fClass: "4003"}},
			Fields: map[string][]string{"query": {"query.hostname"}, "record_type": {"query.type"}, "answer": {"answers.rdata"}}},
	}
}

// Windows event logs: the channels (lower case) and event ids of Sigma's
// Windows categories and services, as Sysmon and the Windows event log
// write them. An empty id list means every event of the channel.
const sysmonChannel = "microsoft-windows-sysmon/operational"

var windowsCategories = map[string]map[string][]int{
	"process_creation":          {sysmonChannel: {1}, "security": {4688}},
	"file_change":               {sysmonChannel: {2}},
	"network_connection":        {sysmonChannel: {3}},
	"sysmon_status":             {sysmonChannel: {4, 16}},
	"process_termination":       {sysmonChannel: {5}},
	"driver_load":               {sysmonChannel: {6}},
	"image_load":                {sysmonChannel: {7}},
	"create_remote_thread":      {sysmonChannel: {8}},
	"raw_access_thread":         {sysmonChannel: {9}},
	"process_access":            {sysmonChannel: {10}},
	"file_event":                {sysmonChannel: {11}},
	"registry_add":              {sysmonChannel: {12}},
	"registry_delete":           {sysmonChannel: {12}},
	"registry_set":              {sysmonChannel: {13}},
	"registry_rename":           {sysmonChannel: {14}},
	"registry_event":            {sysmonChannel: {12, 13, 14}},
	"create_stream_hash":        {sysmonChannel: {15}},
	"pipe_created":              {sysmonChannel: {17, 18}},
	"wmi_event":                 {sysmonChannel: {19, 20, 21}},
	"dns_query":                 {sysmonChannel: {22}},
	"file_delete":               {sysmonChannel: {23, 26}},
	"clipboard_capture":         {sysmonChannel: {24}},
	"process_tampering":         {sysmonChannel: {25}},
	"file_delete_detected":      {sysmonChannel: {26}},
	"file_block_executable":     {sysmonChannel: {27}},
	"file_block_shredding":      {sysmonChannel: {28}},
	"file_executable_detected":  {sysmonChannel: {29}},
	"sysmon_error":              {sysmonChannel: {255}},
	"ps_script":                 {"microsoft-windows-powershell/operational": {4104}, "powershellcore/operational": {4104}},
	"ps_module":                 {"microsoft-windows-powershell/operational": {4103}, "powershellcore/operational": {4103}},
	"ps_classic_start":          {"windows powershell": {400}},
	"ps_classic_provider_start": {"windows powershell": {600}},
	"ps_classic_script":         {"windows powershell": {800}},
}

var windowsServices = map[string][]string{
	"security":                             {"security"},
	"system":                               {"system"},
	"application":                          {"application"},
	"sysmon":                               {sysmonChannel},
	"powershell":                           {"microsoft-windows-powershell/operational", "powershellcore/operational"},
	"powershell-classic":                   {"windows powershell"},
	"windefend":                            {"microsoft-windows-windows defender/operational"},
	"taskscheduler":                        {"microsoft-windows-taskscheduler/operational"},
	"wmi":                                  {"microsoft-windows-wmi-activity/operational"},
	"dns-server":                           {"dns server"},
	"dns-server-analytic":                  {"microsoft-windows-dns-server/analytical"},
	"dns-client":                           {"microsoft-windows-dns client events/operational"},
	"driver-framework":                     {"microsoft-windows-driverframeworks-usermode/operational"},
	"firewall-as":                          {"microsoft-windows-windows firewall with advanced security/firewall"},
	"bits-client":                          {"microsoft-windows-bits-client/operational"},
	"codeintegrity-operational":            {"microsoft-windows-codeintegrity/operational"},
	"ntlm":                                 {"microsoft-windows-ntlm/operational"},
	"dhcp":                                 {"microsoft-windows-dhcp-server/operational"},
	"printservice-admin":                   {"microsoft-windows-printservice/admin"},
	"printservice-operational":             {"microsoft-windows-printservice/operational"},
	"smbclient-security":                   {"microsoft-windows-smbclient/security"},
	"smbclient-connectivity":               {"microsoft-windows-smbclient/connectivity"},
	"smbserver-connectivity":               {"microsoft-windows-smbserver/connectivity"},
	"openssh":                              {"openssh/operational"},
	"msexchange-management":                {"msexchange management"},
	"shell-core":                           {"microsoft-windows-shell-core/operational"},
	"appxdeployment-server":                {"microsoft-windows-appxdeploymentserver/operational"},
	"appxpackaging-om":                     {"microsoft-windows-appxpackaging/operational"},
	"appmodel-runtime":                     {"microsoft-windows-appmodel-runtime/admin"},
	"lsa-server":                           {"microsoft-windows-lsa/operational"},
	"capi2":                                {"microsoft-windows-capi2/operational"},
	"bitlocker":                            {"microsoft-windows-bitlocker/bitlocker management"},
	"terminalservices-localsessionmanager": {"microsoft-windows-terminalservices-localsessionmanager/operational"},
	"certificateservicesclient-lifecycle-system": {"microsoft-windows-certificateservicesclient-lifecycle-system/operational"},
	"diagnosis-scripted":                         {"microsoft-windows-diagnosis-scripted/operational"},
	"iis-configuration":                          {"microsoft-iis-configuration/operational"},
	"ldap":                                       {"microsoft-windows-ldap-client/debug"},
	"microsoft-servicebus-client":                {"microsoft-servicebus-client"},
	"security-mitigations": {"microsoft-windows-security-mitigations/kernel mode",
		"microsoft-windows-security-mitigations/user mode"},
	"applocker": {"microsoft-windows-applocker/exe and dll", "microsoft-windows-applocker/msi and script",
		"microsoft-windows-applocker/packaged app-deployment", "microsoft-windows-applocker/packaged app-execution"},
}

// windowsSources turns the two maps into sources: one per (channel, event
// id) a category names, one per channel, and one for Windows events on
// channels neither names.
func windowsSources() []Source {
	type pair struct {
		ch string
		id int
	}
	cats := map[pair][]string{}
	chans := map[string]bool{}
	for cat, m := range windowsCategories {
		for ch, ids := range m {
			chans[ch] = true
			for _, id := range ids {
				cats[pair{ch, id}] = append(cats[pair{ch, id}], cat)
			}
		}
	}
	svcs := map[string][]string{}
	for svc, chs := range windowsServices {
		for _, ch := range chs {
			chans[ch] = true
			svcs[ch] = append(svcs[ch], svc)
		}
	}
	var out []Source
	pairs := slices.SortedFunc(maps.Keys(cats), func(a, b pair) int {
		if c := strings.Compare(a.ch, b.ch); c != 0 {
			return c
		}
		return a.id - b.id
	})
	for _, p := range pairs {
		src := Source{
			Name: "windows/" + p.ch + "#" + itoa(p.id), Product: "windows",
			Services: slices.Sorted(slices.Values(svcs[p.ch])), Categories: slices.Sorted(slices.Values(cats[p])),
			Match: []map[string]string{{"Channel": p.ch, "EventID": itoa(p.id)}},
		}
		if p == (pair{"security", 4688}) {
			// process_creation from the Security log (pySigma's Windows
			// audit mapping): the command line is CommandLine in both.
			src.Fields = map[string][]string{
				"Image": {"NewProcessName"}, "ParentImage": {"ParentProcessName"}, "IntegrityLevel": {"MandatoryLabel"},
			}
			src.Values = map[string]map[string]string{"IntegrityLevel": {
				"S-1-16-4096": "Low", "S-1-16-8192": "Medium", "S-1-16-8448": "Medium", "S-1-16-12288": "High", "S-1-16-16384": "System",
			}}
		}
		out = append(out, src)
	}
	for _, ch := range slices.Sorted(maps.Keys(chans)) {
		out = append(out, Source{
			Name: "windows/" + ch, Product: "windows", Services: slices.Sorted(slices.Values(svcs[ch])),
			Match: []map[string]string{{"Channel": ch}},
		})
	}
	// Events of a channel neither map names (evtx_dump and the OCSF
	// events of `vigil ingest` always carry both fields).
	return append(out, Source{Name: "windows", Product: "windows", Match: []map[string]string{{"Channel": "*", "EventID": "*"}}})
}
