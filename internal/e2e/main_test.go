// Package e2e runs the vigil binary as a real subprocess and drives it with
// real Kafka clients (franz-go, kcat, kafka-python, confluent-kafka).
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// vigilBin is the broker binary built once by TestMain.
var vigilBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// The tests marked parallel mostly wait on their subprocesses (a
	// sequential run used 2.2 min of CPU in 7.6 min), so four at a time
	// even on two cores, unless -parallel says otherwise. The cluster
	// tests, whose leases last 2 s, stay sequential and run alone.
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		if err := flag.Set("test.parallel", "4"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}
	tmp, err := os.MkdirTemp("", "vigil-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: find module root:", err)
		return 1
	}
	vigilBin = filepath.Join(tmp, "vigil")
	// -buildvcs=auto: the binary records the commit (TestVersion) even where
	// GOFLAGS turns that off, and builds outside a checkout still work.
	args := []string{"build", "-buildvcs=auto", "-o", vigilBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/vigil")
	build := exec.Command("go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	return m.Run()
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", err
	}
	return root, nil
}

// broker is one running vigil process.
type broker struct {
	t       testing.TB
	addr    string
	dataDir string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// handedOut are the addresses freeAddr returned in this test process. The
// kernel may give a just-closed port out again, so two addresses picked
// before either process binds them (a broker's listener and another's
// admin listener) could be the same, and one broker would fail to start.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago and that it has not returned before.
func freeAddr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return addr
		}
	}
}

// startBroker starts vigil on addr (a free port if empty) over dataDir and
// waits until the port accepts connections. The process is stopped at the
// end of the test, and its log printed if the test failed.
func startBroker(t testing.TB, addr, dataDir string, extra ...string) *broker {
	t.Helper()
	if addr == "" {
		addr = freeAddr(t)
	}
	logf, err := os.CreateTemp(t.TempDir(), "vigil-*.log")
	if err != nil {
		t.Fatal(err)
	}
	// The kernel picks the admin port (callers that need it pass their
	// own --admin-listen): a port found free a moment earlier may be taken
	// meanwhile, by a client's connection in a test running beside this one.
	args := append([]string{"serve", "--listen", addr, "--data-dir", dataDir, "--admin-listen", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(vigilBin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start vigil: %v", err)
	}
	logf.Close()
	b := &broker{t: t, addr: addr, dataDir: dataDir, logPath: logf.Name(), cmd: cmd, exited: make(chan struct{})}
	go func() {
		b.waitErr = cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			t.Logf("vigil log (%s, pid %d):\n%s", b.addr, cmd.Process.Pid, b.logTail(200))
		}
		b.checkRaces()
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-b.exited:
			t.Fatalf("vigil exited before accepting connections: %v\n%s", b.waitErr, b.logTail(100))
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("vigil did not accept connections on %s within 30s: %v\n%s", addr, err, b.logTail(100))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs the broker and waits for it to be gone.
func (b *broker) kill() {
	b.t.Helper()
	select {
	case <-b.exited:
		b.t.Fatalf("vigil had already exited before SIGKILL: %v\n%s", b.waitErr, b.logTail(100))
	default:
	}
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		b.t.Fatalf("SIGKILL vigil: %v", err)
	}
	<-b.exited
}

// stop shuts the broker down gracefully (SIGTERM), falling back to SIGKILL.
func (b *broker) stop() {
	select {
	case <-b.exited:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		// SIGQUIT makes the Go runtime print every goroutine's stack to
		// the log, which is what shows where the shutdown hangs.
		_ = b.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-b.exited:
		case <-time.After(5 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.exited
		}
		b.t.Errorf("vigil did not stop within 30s of SIGTERM; its goroutines:\n%s", b.goroutineDump())
	}
}

// goroutineDump is the stack dump a SIGQUIT left at the end of the log.
func (b *broker) goroutineDump() string {
	log := b.log()
	i := strings.LastIndex(log, "SIGQUIT: quit")
	if i < 0 {
		return "(no goroutine dump in the log)"
	}
	return log[i:]
}

var adminLogged = regexp.MustCompile(`msg="vigil broker listening" .*\badmin=(\S+)`)

// adminAddr is the admin listener's address, from the broker's log.
func (b *broker) adminAddr() (string, bool) {
	m := adminLogged.FindStringSubmatch(b.log())
	if m == nil {
		return "", false
	}
	return m[1], true
}

func (b *broker) log() string {
	raw, _ := os.ReadFile(b.logPath)
	return string(raw)
}

func (b *broker) logTail(lines int) string {
	all := strings.Split(strings.TrimRight(b.log(), "\n"), "\n")
	if len(all) > lines {
		all = append([]string{fmt.Sprintf("... (%d earlier lines)", len(all)-lines)}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}

// checkRaces fails the test if a -race built broker reported a data race or
// the broker panicked.
func (b *broker) checkRaces() {
	log := b.log()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if i := strings.Index(log, bad); i >= 0 {
			end := min(len(log), i+6000)
			b.t.Errorf("vigil log contains %q:\n%s", bad, log[i:end])
		}
	}
}

// createTopic creates a topic with a franz-go admin client.
func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	createTopicWith(t, addr, topic, partitions, nil)
}

// createCompacted creates a one-partition topic with cleanup.policy=compact
// that the cleaner takes up as soon as anything in it is dirty: with the
// default ratio of 0.5, a pass that ran between two small uploads leaves
// the second one under the ratio for good.
func createCompacted(t *testing.T, addr, topic string) {
	t.Helper()
	createTopicWith(t, addr, topic, 1, map[string]*string{
		"cleanup.policy": kadm.StringPtr("compact"), "min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
	})
}

func createTopicWith(t *testing.T, addr, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create topic %s: %v (%s)", r.Topic, r.Err, r.ErrMessage)
		}
	}
}

// runCmd runs a command with a timeout and returns stdout; it fails the test
// with both outputs on error.
func runCmd(t *testing.T, timeout time.Duration, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		t.Fatalf("%s %s: %v after %v (ctx: %v)\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err,
			time.Since(start).Round(time.Millisecond), ctx.Err(), truncate(stdout.String(), 4000), truncate(stderr.String(), 8000))
	}
	return stdout.Bytes()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("... (%d more bytes)", len(s)-n)
}
