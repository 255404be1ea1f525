// Package receiver runs the real receivers `vigil export` is tested and
// benchmarked against, as processes on free loopback ports over
// directories the caller gives:
//
//   - ZincSearch (zincsearch): an Elasticsearch-compatible `_bulk` and
//     search API that keys documents by _id, so it shows whether a sink
//     is idempotent;
//   - VictoriaLogs (victoria-logs): an Elasticsearch `_bulk` endpoint and
//     a Splunk HEC endpoint (/services/collector/event), fast enough to
//     benchmark against; it appends every document it is sent, ids or
//     not, so it also counts re-deliveries;
//   - the OpenTelemetry Collector's Splunk HEC receiver (otelhec, built
//     from the module in ./otelhec): Splunk's token check, channels and
//     indexer acknowledgement as an implementation Vigil did not write.
//
// The binaries are looked up on PATH, then in $GOPATH/bin; .ci/install
// builds them (`go install` for VictoriaLogs, a patched module build for
// ZincSearch, a build of ./otelhec). The package has no test
// dependencies, so that `vigil bench export` can start VictoriaLogs too;
// exporttest wraps it for tests.
package receiver

import (
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Install hints, printed when a binary is missing.
const (
	ZincInstall     = "zincsearch v0.4.10 (built from its module by .ci/install: web/dist created, the optional profiler dropped)"
	VictoriaInstall = "`go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.2` (.ci/install does)"
)

// Binary returns the path of a receiver's binary, or "".
func Binary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// process is one receiver process, its output kept for failures.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *output
	done chan struct{}
	err  error
}

type output struct {
	mu  sync.Mutex
	buf []byte
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, p...)
	if len(o.buf) > 1<<20 {
		o.buf = o.buf[len(o.buf)-1<<19:]
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf)
}

// startProcess starts bin and waits until probe (a URL) answers below 500.
func startProcess(name, bin string, args, env []string, probe string, client *http.Client) (*process, error) {
	p := &process{name: name, out: &output{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before answering: %v\n%s", name, p.err, Tail(p.out.String()))
		default:
		}
		resp, err := client.Get(probe)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not answer %s within 60s: %v\n%s", name, probe, err, Tail(p.out.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Tail is the last 40 lines of a receiver's output, for a failure's log.
func Tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
