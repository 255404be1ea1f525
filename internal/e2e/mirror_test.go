package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMirrorVerifyCLI runs the built `vigil mirror verify` with kfake
// (franz-go's Kafka implementation, in the test process) as the source and
// a vigil process as the destination: exit 0 and a match line per
// partition for equal topics; exit 1 and the changed record's line when
// one header differs; exit 2 for a bad command line, a subcommand that
// does not exist and a source that cannot be reached.
func TestMirrorVerifyCLI(t *testing.T) {
	t.Parallel()
	src, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srcAddr := src.ListenAddrs()[0]
	dst := startBroker(t, "", t.TempDir())

	at := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	for _, addr := range []string{srcAddr, dst.addr} {
		createTopic(t, addr, "alerts", 2)
		createTopic(t, addr, "flows", 1)
		var recs []*kgo.Record
		for i := range 50 {
			recs = append(recs, &kgo.Record{Topic: "alerts", Partition: int32(i % 2), Key: fmt.Appendf(nil, "ws-%02d", i%7),
				Value: fmt.Appendf(nil, `{"seq":%d}`, i), Timestamp: at.Add(time.Duration(i) * time.Second),
				Headers: []kgo.RecordHeader{{Key: "class", Value: []byte("3002")}}})
		}
		for i := range 10 {
			host := "ws-01"
			if i == 3 && addr == dst.addr {
				host = "ws-10"
			}
			recs = append(recs, &kgo.Record{Topic: "flows", Value: fmt.Appendf(nil, "flow %d", i), Timestamp: at.Add(time.Duration(i) * time.Second),
				Headers: []kgo.RecordHeader{{Key: "host", Value: []byte(host)}}})
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		err = cl.ProduceSync(context.Background(), recs...).FirstErr()
		cl.Close()
		if err != nil {
			t.Fatalf("produce to %s: %v", addr, err)
		}
	}

	run := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, vigilBin, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			code = exit.ExitCode()
		default:
			t.Fatalf("vigil %s: %v", strings.Join(args, " "), err)
		}
		t.Logf("vigil %s: exit %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
		return out.String(), errOut.String(), code
	}
	verify := []string{"mirror", "verify", "--source-brokers", srcAddr, "--brokers", dst.addr}

	out, _, code := run(append(verify, "--topics", "alerts")...)
	if code != 0 {
		t.Errorf("equal topic: exit %d, want 0", code)
	}
	for _, want := range []string{
		`(?m)^alerts/0: match: offsets \[0, 25\), 25 records, sha256 [0-9a-f]{32}$`,
		`(?m)^alerts/1: match: offsets \[0, 25\), 25 records, sha256 [0-9a-f]{32}$`,
		`(?m)^summary: 1 topic, 2 partitions, 50 records compared in \S+: all match$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("stdout lacks %s", want)
		}
	}

	out, _, code = run(append(verify, "--topics", "alerts|flows", "--quiet")...)
	if code != 1 {
		t.Errorf("a changed header: exit %d, want 1", code)
	}
	for _, want := range []string{
		`flows/0: DIFFERS at offset 3: header 0 ("host") value: source "ws-01", destination "ws-10"`,
		"summary: 2 topics, 3 partitions, 53 records compared in ",
		": 2 partitions match, 1 differs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	// Bounded before the change, the same topic matches.
	if _, _, code := run(append(verify, "--topics", "flows", "--to-offset", "3")...); code != 0 {
		t.Errorf("flows up to offset 3: exit %d, want 0", code)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mirror", "verify", "--brokers", dst.addr, "--topics", "alerts"}, "--source-brokers is required"},
		{append(verify, "--topics", "alerts", "--source-tls-ca", "/x"), "--source-tls-ca with --source-security-protocol PLAINTEXT"},
		{append(verify, "--topics", "alerts", "--from-offset", "5", "--to-offset", "5"), "--from-offset 5 is not below --to-offset 5"},
		{append(verify, "--topics", "nothing"), `no topic on either cluster matches --topics ("nothing")`},
		{[]string{"mirror", "verify", "--source-brokers", closed, "--brokers", dst.addr, "--topics", "alerts", "--timeout", "2s"}, "vigil mirror verify: source: "},
		{[]string{"mirror", "clone", "alerts"}, `unknown subcommand "clone"; the subcommands: promote, verify`},
		{[]string{"mirror", "--source-brokers", srcAddr}, "--topics is required"},
	} {
		_, errOut, code := run(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("vigil %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}

// TestMirrorVerifyMemory checks that vigil mirror verify streams: over a
// partition of 96 MiB on each side its peak resident memory is within
// 64 MiB of its peak over a topic of 1 MiB (about 30 MiB more on two
// cores), where a comparison that held one side's partition would need
// 96 MiB more (holding the source's, it grew by 162 MiB). The race
// detector's shadow memory would blur the figure, so the test runs only
// without it (the full-size e2e run).
func TestMirrorVerifyMemory(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("full-size and without the race detector only")
	}
	src, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srcAddr := src.ListenAddrs()[0]
	dst := startBroker(t, "", t.TempDir())

	at := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	fill := func(addr, topic string, mib int) {
		t.Helper()
		createTopic(t, addr, topic, 1)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		// The same incompressible values on both sides.
		rng := rand.New(rand.NewPCG(1, uint64(mib)))
		for chunk := range mib {
			recs := make([]*kgo.Record, 0, 64)
			for i := range 64 {
				v := make([]byte, 16<<10)
				for j := 0; j < len(v); j += 8 {
					binary.LittleEndian.PutUint64(v[j:], rng.Uint64())
				}
				recs = append(recs, &kgo.Record{Topic: topic, Value: v, Timestamp: at.Add(time.Duration(chunk*64+i) * time.Millisecond)})
			}
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Fatalf("produce to %s: %v", addr, err)
			}
		}
	}
	for _, addr := range []string{srcAddr, dst.addr} {
		fill(addr, "small", 1)
		fill(addr, "large", 96)
	}
	// Peak resident memory is read from /proc (VmHWM) while the command
	// runs: the rusage of a child reports the larger of its own peak and
	// the parent's at the fork, and the parent holds the source's data.
	peak := func(topic string) int64 {
		t.Helper()
		cmd := exec.Command(vigilBin, "mirror", "verify", "--source-brokers", srcAddr, "--brokers", dst.addr, "--topics", topic)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var hwm int64
		for {
			if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
				for line := range strings.Lines(string(status)) {
					if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
						n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
						hwm = max(hwm, n<<10)
					}
				}
			}
			select {
			case err := <-done:
				if err != nil || !strings.Contains(out.String(), "all match") {
					t.Fatalf("vigil mirror verify --topics %s: %v\n%s", topic, err, out.String())
				}
				if hwm == 0 {
					t.Fatal("no VmHWM read from /proc")
				}
				t.Logf("--topics %s: peak RSS %d MiB\n%s", topic, hwm>>20, out.String())
				return hwm
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	small, large := peak("small"), peak("large")
	if grew := large - small; grew > 64<<20 {
		t.Errorf("peak RSS %d MiB over 96 MiB per side, %d MiB over 1 MiB: it grew by %d MiB, not streaming", large>>20, small>>20, grew>>20)
	}
}
