// Package exporttest is what the export tests share: the real receivers
// of package receiver (ZincSearch, VictoriaLogs, the OpenTelemetry
// Collector's Splunk HEC receiver) started for a test and
// stopped at its end, a broker in the test process, test events, and two
// proxies that stand in front of the receivers to inject what they never
// do on demand: per-item errors, throttling, TLS client certificates and
// API keys (BulkProxy), and Splunk's token check and indexer
// acknowledgement protocol (HECProxy). The documents still land in the
// real receiver behind them.
//
// Without a receiver's binary the tests that need it skip, unless
// VIGIL_REQUIRE_RECEIVERS=1 (CI), which makes them fail instead.
package exporttest

import (
	"os"
	"testing"

	"github.com/vigilhq/vigil/internal/export/receiver"
)

// The receivers, as package receiver runs them.
type (
	Zinc         = receiver.Zinc
	VictoriaLogs = receiver.VictoriaLogs
	OtelHEC      = receiver.OtelHEC
	HECEvent     = receiver.HECEvent
)

// Need returns the path of a receiver's binary, or skips t without it
// (fails it with VIGIL_REQUIRE_RECEIVERS=1); install says how to get it.
func Need(t testing.TB, name, install string) string {
	t.Helper()
	bin := receiver.Binary(name)
	if bin == "" {
		msg := name + " not found on PATH or in $GOPATH/bin; install " + install + " to run the export tests against it"
		if os.Getenv("VIGIL_REQUIRE_RECEIVERS") == "1" {
			t.Fatal(msg + " (VIGIL_REQUIRE_RECEIVERS=1)")
		}
		t.Skip(msg)
	}
	return bin
}

// StartZinc starts ZincSearch for t and stops it at t's cleanup; it
// skips t without the binary.
func StartZinc(t testing.TB) *Zinc {
	t.Helper()
	bin := Need(t, "zincsearch", receiver.ZincInstall)
	z, err := receiver.LaunchZinc(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		z.Stop()
		if t.Failed() {
			t.Logf("zincsearch output:\n%s", z.Output())
		}
	})
	return z
}

// StartVictoriaLogs starts VictoriaLogs for t and stops it at t's
// cleanup; it skips t without the binary.
func StartVictoriaLogs(t testing.TB) *VictoriaLogs {
	t.Helper()
	bin := Need(t, "victoria-logs", receiver.VictoriaInstall)
	v, err := receiver.LaunchVictoriaLogs(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.Stop()
		if t.Failed() {
			t.Logf("victoria-logs output:\n%s", v.Output())
		}
	})
	return v
}

// StartOtelHEC starts the OpenTelemetry Collector's Splunk HEC receiver
// for t, accepting token (indexer acknowledgement on if ack), and stops
// it at t's cleanup; it skips t without the binary.
func StartOtelHEC(t testing.TB, token string, ack bool) *OtelHEC {
	t.Helper()
	bin := Need(t, "otelhec", receiver.OtelHECInstall)
	o, err := receiver.LaunchOtelHEC(bin, t.TempDir(), token, ack)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		o.Stop()
		if t.Failed() {
			t.Logf("otelhec output:\n%s", o.Output())
		}
	})
	return o
}
