package sigma

import "strings"

// LogsourceTable routes Sigma logsources to Windows event channels and
// event ids, so a rule is evaluated only on the events of its logsource.
// Categories and services missing from the table are not restricted
// beyond their product: a rule is never dropped for an unknown logsource.
type LogsourceTable struct {
	// Categories maps a category to (lower-case channel -> event ids; an
	// empty id list means every id of the channel).
	Categories map[string]map[string][]int
	// Services maps a service to lower-case channels.
	Services map[string][]string
}

const sysmonChannel = "microsoft-windows-sysmon/operational"

// WindowsLogsources is the Sysmon / Windows event log taxonomy of SigmaHQ.
func WindowsLogsources() *LogsourceTable {
	sysmon := func(ids ...int) map[string][]int { return map[string][]int{sysmonChannel: ids} }
	ps := "microsoft-windows-powershell/operational"
	psCore := "powershellcore/operational"
	return &LogsourceTable{
		Categories: map[string]map[string][]int{
			"process_creation":          {sysmonChannel: {1}, "security": {4688}},
			"file_change":               sysmon(2),
			"network_connection":        sysmon(3),
			"sysmon_status":             sysmon(4, 16),
			"process_termination":       sysmon(5),
			"driver_load":               sysmon(6),
			"image_load":                sysmon(7),
			"create_remote_thread":      sysmon(8),
			"raw_access_thread":         sysmon(9),
			"process_access":            sysmon(10),
			"file_event":                sysmon(11),
			"registry_add":              sysmon(12),
			"registry_delete":           sysmon(12),
			"registry_set":              sysmon(13),
			"registry_rename":           sysmon(14),
			"registry_event":            sysmon(12, 13, 14),
			"create_stream_hash":        sysmon(15),
			"pipe_created":              sysmon(17, 18),
			"wmi_event":                 sysmon(19, 20, 21),
			"dns_query":                 sysmon(22),
			"file_delete":               sysmon(23, 26),
			"clipboard_capture":         sysmon(24),
			"process_tampering":         sysmon(25),
			"file_delete_detected":      sysmon(26),
			"file_block_executable":     sysmon(27),
			"file_block_shredding":      sysmon(28),
			"file_executable_detected":  sysmon(29),
			"sysmon_error":              sysmon(255),
			"ps_script":                 {ps: {4104}, psCore: {4104}},
			"ps_module":                 {ps: {4103}, psCore: {4103}},
			"ps_classic_start":          {"windows powershell": {400}},
			"ps_classic_provider_start": {"windows powershell": {600}},
			"ps_classic_script":         {"windows powershell": {800}},
		},
		Services: map[string][]string{
			"security":                             {"security"},
			"system":                               {"system"},
			"application":                          {"application"},
			"sysmon":                               {sysmonChannel},
			"powershell":                           {ps, psCore},
			"powershell-classic":                   {"windows powershell"},
			"windefend":                            {"microsoft-windows-windows defender/operational"},
			"taskscheduler":                        {"microsoft-windows-taskscheduler/operational"},
			"wmi":                                  {"microsoft-windows-wmi-activity/operational"},
			"dns-server":                           {"dns server"},
			"driver-framework":                     {"microsoft-windows-driverframeworks-usermode/operational"},
			"firewall-as":                          {"microsoft-windows-windows firewall with advanced security/firewall"},
			"bits-client":                          {"microsoft-windows-bits-client/operational"},
			"codeintegrity-operational":            {"microsoft-windows-codeintegrity/operational"},
			"ntlm":                                 {"microsoft-windows-ntlm/operational"},
			"dhcp":                                 {"microsoft-windows-dhcp-server/operational"},
			"printservice-admin":                   {"microsoft-windows-printservice/admin"},
			"printservice-operational":             {"microsoft-windows-printservice/operational"},
			"smbclient-security":                   {"microsoft-windows-smbclient/security"},
			"openssh":                              {"openssh/operational"},
			"msexchange-management":                {"msexchange management"},
			"shell-core":                           {"microsoft-windows-shell-core/operational"},
			"appxdeployment-server":                {"microsoft-windows-appxdeploymentserver/operational"},
			"lsa-server":                           {"microsoft-windows-lsa/operational"},
			"capi2":                                {"microsoft-windows-capi2/operational"},
			"bitlocker":                            {"microsoft-windows-bitlocker/bitlocker management"},
			"terminalservices-localsessionmanager": {"microsoft-windows-terminalservices-localsessionmanager/operational"},
			"applocker": {"microsoft-windows-applocker/exe and dll", "microsoft-windows-applocker/msi and script",
				"microsoft-windows-applocker/packaged app-deployment", "microsoft-windows-applocker/packaged app-execution"},
		},
	}
}

// route classes: every (channel, id) pair the table names, every channel
// with any id, then two catch-alls.
const (
	classOtherWindows = 0 // a Windows event on a channel the table does not know
	classUnrouted     = 1 // no Channel field: routing cannot decide, all rules apply
)

type router struct {
	classes map[string]int32 // "channel#id" or "channel#*" -> class
	keys    []routeKey       // per class
}

type routeKey struct {
	channel string
	id      int // -1: any id
}

// newRouter makes the route classes of a table, plus those of extra
// (channel, id) pairs (where logsource field mappings apply).
func newRouter(t *LogsourceTable, extra []routeKey) *router {
	r := &router{classes: map[string]int32{}, keys: []routeKey{{"", -2}, {"", -3}}}
	add := func(ch string, id int) {
		k := routeKeyString(ch, id)
		if _, ok := r.classes[k]; !ok {
			r.classes[k] = int32(len(r.keys))
			r.keys = append(r.keys, routeKey{ch, id})
		}
	}
	for _, chans := range t.Categories {
		for ch, ids := range chans {
			add(ch, -1)
			for _, id := range ids {
				add(ch, id)
			}
		}
	}
	for _, chans := range t.Services {
		for _, ch := range chans {
			add(ch, -1)
		}
	}
	for _, k := range extra {
		add(k.channel, -1)
		if k.id >= 0 {
			add(k.channel, k.id)
		}
	}
	return r
}

func routeKeyString(ch string, id int) string {
	if id < 0 {
		return ch + "#*"
	}
	return ch + "#" + itoa(id)
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(b[n:])
}

// allows reports whether a rule with logsource ls may match events of class c.
func (r *router) allows(t *LogsourceTable, ls Logsource, c int32) bool {
	if c == classUnrouted {
		return true
	}
	product := strings.ToLower(ls.Product)
	if product != "" && product != "windows" {
		return false
	}
	cat, catKnown := t.Categories[strings.ToLower(ls.Category)]
	svc, svcKnown := t.Services[strings.ToLower(ls.Service)]
	if product == "" && !catKnown && !svcKnown {
		return false // a product-less logsource the table does not know (database, proxy ...) is not Windows
	}
	if c == classOtherWindows {
		return !catKnown && !svcKnown
	}
	k := r.keys[c]
	if catKnown {
		ids, ok := cat[k.channel]
		if !ok {
			return false
		}
		if len(ids) > 0 {
			found := false
			for _, id := range ids {
				found = found || id == k.id
			}
			if !found {
				return false
			}
		}
	}
	if svcKnown {
		found := false
		for _, ch := range svc {
			found = found || ch == k.channel
		}
		if !found {
			return false
		}
	}
	return true
}
