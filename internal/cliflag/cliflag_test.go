package cliflag

import (
	"bytes"
	"testing"
)

func TestSubcommandHelp(t *testing.T) {
	for _, c := range []struct {
		args           []string
		ok             bool
		code           int
		stdout, stderr string
	}{
		{nil, false, ExitUsage, "", "USAGE"},
		{[]string{"-h"}, false, 0, "USAGE", ""},
		{[]string{"--help"}, false, 0, "USAGE", ""},
		{[]string{"help"}, false, 0, "USAGE", ""},
		{[]string{"verify", "-h"}, true, 0, "", ""},
	} {
		var out, errOut bytes.Buffer
		ok, code := SubcommandHelp(c.args, "USAGE", &out, &errOut)
		if ok != c.ok || code != c.code || out.String() != c.stdout || errOut.String() != c.stderr {
			t.Errorf("%q: ok %v code %d stdout %q stderr %q; want %v %d %q %q", c.args, ok, code, out.String(), errOut.String(), c.ok, c.code, c.stdout, c.stderr)
		}
	}
}
