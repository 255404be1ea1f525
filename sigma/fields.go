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
	// Logsources are field mappings that hold only in the events of one
	// channel (and event ids).
	Logsources []LogsourceMapping `yaml:"logsources"`
}

// LogsourceMapping gives the events of one channel (all of them, or only
// those with one of EventIDs) more field names: there, each Sigma field
// of Fields also takes the values of the Sigma fields listed for it
// (names after Aliases and StripPrefixes). Windows Security event 4688
// names the new process NewProcessName where Sysmon event 1, for which
// SigmaHQ's process_creation rules are written, says Image. The fields
// keep their own values too.
type LogsourceMapping struct {
	Channel  string              `yaml:"channel"`
	EventIDs []int               `yaml:"event_ids"`
	Fields   map[string][]string `yaml:"fields"`
}

// WindowsEvtxMapping is the mapping for Windows events as evtx_dump writes
// them (the shape of SigmaHQ's regression data), and for flat events.
func WindowsEvtxMapping() FieldMapping {
	return FieldMapping{
		Aliases: map[string][]string{
			"Provider_Name": {"Event.System.Provider.#attributes.Name"},
			"EventID":       {"Event.System.EventID.#text"},
			"ProcessID":     {"Event.System.Execution.#attributes.ProcessID"},
			"ThreadID":      {"Event.System.Execution.#attributes.ThreadID"},
			"SystemTime":    {"Event.System.TimeCreated.#attributes.SystemTime"},
		},
		StripPrefixes: []string{"Event.EventData.", "Event.System.", "Event.UserData.*."},
		RemoveSpaces:  true,
		Logsources: []LogsourceMapping{{
			// process_creation from the Security log (pySigma's Windows
			// audit mapping): the command line is CommandLine in both.
			Channel:  "Security",
			EventIDs: []int{4688},
			Fields:   map[string][]string{"Image": {"NewProcessName"}, "ParentImage": {"ParentProcessName"}},
		}},
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
