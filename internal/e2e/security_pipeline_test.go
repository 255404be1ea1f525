package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// TestSecurePipeline runs the pipeline against a broker whose clients
// authenticate: vigil ingest and vigil detect reach the SASL_SSL listener
// with the client security flags (SCRAM-SHA-512, the CA), an sshd line
// sent over syslog becomes an alert, and the broker logged both as the
// pipeline's user.
func TestSecurePipeline(t *testing.T) {
	t.Parallel()
	sb := startSecureBroker(t, certstest.NewCA(t, "pipeline-ca"), []string{"SASL_SSL"})
	sb.addSCRAMUsers(t, map[string]string{"pipeline": "pipeline-secret"})
	pass := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pass, []byte("pipeline-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	client := []string{"--brokers", sb.addr["SASL_SSL"], "--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512",
		"--sasl-username", "pipeline", "--sasl-password-file", pass, "--tls-ca", sb.ca.File}
	syslogAddr := freeAddr(t)
	start := func(name string, args ...string) {
		t.Helper()
		logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(vigilBin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			logf.Close()
			if t.Failed() {
				raw, _ := os.ReadFile(logf.Name())
				t.Logf("%s log:\n%s", name, truncate(string(raw), 4000))
			}
		})
	}
	start("ingest", append([]string{"ingest", "--syslog-tcp", syslogAddr, "--syslog-udp", "", "--http", ""}, client...)...)
	rules := filepath.Join(sigmatest.Data(t), "rules", "linux")
	start("detect", append([]string{"detect", "--rules", rules, "--start", "earliest"}, client...)...)

	// The line SigmaHQ's "Suspicious OpenSSH Daemon Error" looks for.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", syslogAddr, time.Second); err == nil {
			msg := "<38>1 " + time.Now().UTC().Format(time.RFC3339) + " bastion-1 sshd 1234 - - error: Corrupted MAC on input."
			fmt.Fprintf(c, "%d %s", len(msg), msg)
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ingest's syslog listener never opened")
		}
		time.Sleep(100 * time.Millisecond)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.addr["PLAINTEXT"]), kgo.ConsumeTopics("alerts"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no alert within 60s from the secured pipeline")
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) {
			found = found || strings.Contains(string(r.Value), "Suspicious OpenSSH Daemon Error")
		})
		if found {
			break
		}
	}
	sb.requireAuthenticated(t, "User:pipeline", "SCRAM-SHA-512")
	if n := len(sb.authenticated("User:pipeline", "SCRAM-SHA-512")); n < 2 {
		t.Errorf("%d client addresses authenticated as User:pipeline, want ingest's and detect's at least", n)
	}
}
