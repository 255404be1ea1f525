package admincli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/vigilhq/vigil/internal/cliflag"
)

// parseInterspersed lets flags follow positional arguments, as operators
// type them (`topics create audit --partitions 3`); the flag package alone
// stops at the first positional argument. After "--" everything is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := cliflag.ParseOnly(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// listFlag collects a repeatable flag; comma-separated values are split
// too, so `--state Stable,Empty` and `--state Stable --state Empty` agree.
type listFlag struct {
	vals  []string
	split bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(v string) error {
	if !l.split {
		l.vals = append(l.vals, v)
		return nil
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			l.vals = append(l.vals, s)
		}
	}
	return nil
}

// parseKVs turns repeated k=v flags into a map; a later value for the same
// key wins, as it would in a properties file.
func parseKVs(flagName string, kvs []string) (map[string]string, error) {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usagef("--%s %q: want key=value", flagName, kv)
		}
		out[k] = v
	}
	return out, nil
}

func needArgs(inv *invocation, what string) error {
	if len(inv.pos) == 0 {
		return usagef("name at least one %s", what)
	}
	return nil
}

func dedupe(names []string) []string {
	seen := make(map[string]bool, len(names))
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
