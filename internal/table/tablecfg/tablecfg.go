// Package tablecfg holds the topic configs that ask Vigil to keep a
// lakehouse table of a topic (package table does the work). It is a leaf
// apart from table so that the broker validates the configs without
// linking the Iceberg and Parquet writers.
package tablecfg

import (
	"fmt"
	"strconv"
	"strings"
)

// The topic configs.
const (
	// Enabled, set to true, makes the broker that owns the topic's table
	// keep it (docs/tables.md).
	Enabled = "vigil.table.enabled"
	// Format is the table format; iceberg, the default, is the only one.
	Format = "vigil.table.format"
	// Columns are OCSF attributes promoted to columns of their own beyond
	// the base event's, as dotted paths (src_endpoint.ip): adding one
	// evolves the table's schema at its next commit.
	Columns = "vigil.table.columns"
)

// FormatIceberg is Format's one value.
const FormatIceberg = "iceberg"

// On reports whether a topic with these configs has a table.
func On(configs map[string]string) bool {
	v, _ := strconv.ParseBool(strings.TrimSpace(configs[Enabled]))
	return v
}

// ValidateFormat checks a Format value.
func ValidateFormat(v string) error {
	if v != FormatIceberg {
		return fmt.Errorf("%s must be %q, the only table format Vigil writes", Format, FormatIceberg)
	}
	return nil
}

// ParseColumns reads a Columns value: comma-separated dotted paths of
// letters, digits and underscores.
func ParseColumns(v string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		for _, part := range strings.Split(p, ".") {
			if part == "" || strings.TrimFunc(part, func(r rune) bool {
				return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
			}) != "" {
				return nil, fmt.Errorf("%s: %q is not a dotted path of letters, digits and underscores", Columns, p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}
