package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestIngestFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	run(nil, &out, &errOut)
	if !strings.Contains(errOut.String(), "vigil ingest") {
		t.Errorf("usage lacks vigil ingest:\n%s", errOut.String())
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ingest", "-h"}, 0, "-topic-dns-activity"},
		{[]string{"ingest", "--syslog-tls-cert", "c.pem"}, 2, "go together"},
		{[]string{"ingest", "extra"}, 2, "unexpected arguments"},
		{[]string{"ingest", "--log-level", "loud"}, 2, ""},
		{[]string{"ingest", "--no-such-flag"}, 2, "not defined"},
	} {
		out.Reset()
		errOut.Reset()
		if code := run(tc.args, &out, &errOut); code != tc.code {
			t.Errorf("vigil %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.code, errOut.String())
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("vigil %s: output lacks %q:\n%s", strings.Join(tc.args, " "), tc.want, errOut.String())
		}
	}
}
