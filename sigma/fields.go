package sigma

import "strings"

// FieldMapping maps Sigma field names onto event keys. An event key is the
// dotted path of a JSON leaf ("Event.EventData.Image"). A Sigma field always
// matches the event key of the same name (identity), plus:
//
//   - Aliases: extra event keys per Sigma field (e.g. Provider_Name is
//     Event.System.Provider.#attributes.Name in evtx_dump JSON); this is the
//     hook for Sysmon/Windows names <-> OCSF attributes.
//   - StripPrefixes: event key prefixes whose remainder is the Sigma name, so
//     Event.EventData.Image is the Sigma field Image. A "*" segment matches
//     any one key segment (Event.UserData.*.).
type FieldMapping struct {
	Aliases       map[string][]string `yaml:"aliases"`
	StripPrefixes []string            `yaml:"strip_prefixes"`
	// RemoveSpaces lets keys with spaces ("Source Name", as Windows
	// Defender events have) match the Sigma field without them.
	RemoveSpaces bool `yaml:"remove_spaces"`
	// DotsAsUnderscores lets a dotted Sigma field (id.orig_h) match the
	// event key with underscores instead (id_orig_h), as several public
	// Zeek datasets and JSON shippers write Zeek's records.
	DotsAsUnderscores bool `yaml:"dots_as_underscores"`
	// Logsources are field mappings that hold only in the events of one
	// source.
	Logsources []LogsourceMapping `yaml:"logsources"`
}

// LogsourceMapping gives the events of one source more field names:
// there, each Sigma field of Fields also takes the values of the Sigma
// fields listed for it (names after Aliases and StripPrefixes). It names
// the source by Source (a LogsourceTable name), or by a Windows Channel
// (all its events, or only those with one of EventIDs). The fields keep
// their own values too. Sources of the table carry such mappings of their
// own (Source.Fields); these add to them.
type LogsourceMapping struct {
	Source   string              `yaml:"source"`
	Channel  string              `yaml:"channel"`
	EventIDs []int               `yaml:"event_ids"`
	Fields   map[string][]string `yaml:"fields"`
}

// DefaultMapping is the one field mapping offline and streaming detection
// share. It lets SigmaHQ's rules, written against each source's native
// field names, find their values:
//
//   - in Windows events as evtx_dump writes them (SigmaHQ's regression
//     data): Event.EventData.Image is Image, Event.System.Channel Channel;
//   - in the OCSF events `vigil ingest` writes, which keep the source's
//     own fields in unmapped (unmapped.Image is Image, unmapped.query
//     query) and the Windows channel, event id, provider and host in
//     metadata.log_name, metadata.event_code, metadata.log_provider and
//     device.hostname (Channel, EventID, Provider_Name, Computer); an
//     auditd event keeps each record under unmapped.records.<TYPE>, so
//     an EXECVE's a0 is a0;
//   - in Zeek JSON written with underscores (id_orig_h is id.orig_h);
//   - in what `vigil enrich` adds: each enrichment's data
//     (enrichments.data.<type>.*) is <type>.*, so intel.set,
//     asset.criticality, identity.department, location.country name the
//     enrichments of any value of the event; SourceCountry, SourceCity,
//     SourceAsn, SourceAsOrg and their Destination twins name the
//     endpoints' own (src_endpoint.location.country ...);
//   - and in flat events, by name.
//
// Mappings that hold in one source only (Security 4688's NewProcessName
// is Image, Zeek's uri is c-uri) are the table's (DefaultLogsources).
func DefaultMapping() FieldMapping {
	return FieldMapping{
		Aliases: map[string][]string{
			"Provider_Name": {"Event.System.Provider.#attributes.Name", "metadata.log_provider"},
			"EventID":       {"Event.System.EventID.#text", "metadata.event_code"},
			"ProcessID":     {"Event.System.Execution.#attributes.ProcessID"},
			"ThreadID":      {"Event.System.Execution.#attributes.ThreadID"},
			"SystemTime":    {"Event.System.TimeCreated.#attributes.SystemTime"},
			"Channel":       {"metadata.log_name"},
			"Computer":      {"device.hostname"},
			// vigil enrich: the endpoints' location and AS (OCSF).
			"SourceCountry":      {"src_endpoint.location.country"},
			"SourceCity":         {"src_endpoint.location.city"},
			"SourceAsn":          {"src_endpoint.autonomous_system.number"},
			"SourceAsOrg":        {"src_endpoint.autonomous_system.name"},
			"DestinationCountry": {"dst_endpoint.location.country"},
			"DestinationCity":    {"dst_endpoint.location.city"},
			"DestinationAsn":     {"dst_endpoint.autonomous_system.number"},
			"DestinationAsOrg":   {"dst_endpoint.autonomous_system.name"},
		},
		StripPrefixes: []string{"Event.EventData.", "Event.System.", "Event.UserData.*.", "unmapped.", "unmapped.records.*.",
			// vigil enrich: enrichments[].data.<type> (intel.set, asset.owner).
			"enrichments.data."},
		RemoveSpaces:      true,
		DotsAsUnderscores: true,
	}
}

// prefix is a compiled StripPrefixes entry.
type prefix struct {
	parts []string // literal parts, joined by one wildcard segment each
}

func compilePrefixes(ps []string) []prefix {
	var out []prefix
	for _, p := range ps {
		out = append(out, prefix{parts: strings.Split(p, "*")})
	}
	return out
}

// strip returns the remainder of key after the prefix, and whether it matched.
func (p prefix) strip(key []byte) ([]byte, bool) {
	for i, part := range p.parts {
		if len(key) < len(part) || string(key[:len(part)]) != part {
			return nil, false
		}
		key = key[len(part):]
		if i < len(p.parts)-1 { // a wildcard segment follows: skip to its end
			j := 0
			for j < len(key) && key[j] != '.' {
				j++
			}
			if j == 0 {
				return nil, false
			}
			key = key[j:]
		}
	}
	return key, len(key) > 0
}
