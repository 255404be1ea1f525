package e2e

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/e2e/txncheck"
)

// The stage members of TestTxnChain as supervised processes: started,
// restarted when they exit, SIGKILLed, made zombies, stopped; their
// reports on stdout handed to the checker.

// stageTxnTimeout is the stages' transaction.timeout.ms: short, so a
// frozen stage's transaction is aborted by the coordinator within the
// round.
const stageTxnTimeout = 5 * time.Second

// stageProc supervises one stage member: the txnstage process with its
// transactional id, restarted whenever it exits until stop.
type stageProc struct {
	t       *testing.T
	chk     *txncheck.Checker
	bin     string
	args    []string
	txnID   string
	logPath string

	mu       sync.Mutex
	cur      *stageRun
	stopping bool
	starts   int
	exits    []string // how runs ended other than by the harness's kill
	done     chan struct{}
	commits  chan string // told of each commit, if nobody has yet taken the last
}

type stageRun struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	killed bool   // by the harness
	open   string // the transaction begun and not yet ended, as reported; guarded by stageProc.mu
	ending bool   // and End was called on it; guarded by stageProc.mu
	frozen bool   // the harness froze it (SIGSTOP past its transaction timeout); guarded by stageProc.mu
	said   string // its last line that was no report of a transaction: why it exited, if it did on its own
}

func newStage(t *testing.T, chk *txncheck.Checker, commits chan string, bin, logDir, addr, tag, txnID, group string, n int, cfg chainConfig) *stageProc {
	in, out := chainTopics[n], chainTopics[n+1]
	args := append([]string{"-brokers", addr, "-group", group, "-txn-id", txnID, "-in", in.Name, "-out", out.Name,
		"-tag", tag, "-partitions", strconv.Itoa(cfg.partitions), "-txn-timeout", stageTxnTimeout.String()}, cfg.stageArgs...)
	return &stageProc{t: t, chk: chk, commits: commits, bin: bin, args: args, txnID: txnID, logPath: filepath.Join(logDir, txnID+".log"), done: make(chan struct{})}
}

// start runs a new process; the caller holds p.mu.
func (p *stageProc) start() error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), "TXNSTAGE_LOG="+p.logPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stderr = logf
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return fmt.Errorf("start txnstage %s: %w", p.txnID, err)
	}
	p.starts++
	r := &stageRun{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.readReports(stdout, r)
		r.err = cmd.Wait()
		close(r.exited)
	}()
	p.cur = r
	return nil
}

// readReports hands the stage's reports (see testdata/txnstage) to the
// checker, and keeps r's transaction in flight for the faults to aim at.
func (p *stageProc) readReports(stdout io.Reader, r *stageRun) {
	pid := r.cmd.Process.Pid
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 2 {
			p.note(fmt.Sprintf("pid %d: %s", pid, line))
			r.said = line
			continue
		}
		switch f[0] {
		case "begin", "ending":
			p.mu.Lock()
			r.open, r.ending = f[1], f[0] == "ending"
			p.mu.Unlock()
		case "commit", "abort":
			p.mu.Lock()
			r.open, r.ending = "", false
			p.mu.Unlock()
			if f[0] == "abort" {
				p.chk.Aborted(f[1])
				continue
			}
			n, _ := strconv.Atoi(f[2])
			p.chk.Committed(f[1], f[3], n)
			select {
			case p.commits <- f[1]:
			default:
			}
		case "dataloss":
			p.chk.Violation("stage %s (pid %d): %s", p.txnID, pid, line)
		default:
			p.note(fmt.Sprintf("pid %d: %s", pid, line))
			r.said = line
		}
	}
}

func (p *stageProc) note(s string) {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		fmt.Fprintf(f, "%s HARNESS %s\n", time.Now().Format("15:04:05.000"), s)
		f.Close()
	}
}

// supervise starts the stage and restarts it whenever its process exits,
// until stop.
func (p *stageProc) supervise() {
	p.mu.Lock()
	err := p.start()
	p.mu.Unlock()
	if err != nil {
		close(p.done)
		p.t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		for {
			p.mu.Lock()
			r := p.cur
			p.mu.Unlock()
			<-r.exited
			p.mu.Lock()
			if p.stopping {
				p.mu.Unlock()
				return
			}
			if r != p.cur { // a zombie that ended; its replacement runs on
				p.mu.Unlock()
				continue
			}
			if !r.killed && !r.frozen {
				p.exits = append(p.exits, fmt.Sprint(r.err))
				p.t.Logf("stage %s pid %d exited on its own (%v), saying: %s", p.txnID, r.cmd.Process.Pid, r.err, r.said)
			}
			if !r.killed {
				p.note(fmt.Sprintf("exited: %v; restarting", r.err))
			}
			p.mu.Unlock()
			time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
			p.mu.Lock()
			var err error
			if !p.stopping {
				err = p.start()
			}
			p.mu.Unlock()
			if err != nil {
				p.t.Errorf("restart stage %s: %v", p.txnID, err)
				return
			}
		}
	}()
}

// kill SIGKILLs the running process; the supervisor restarts it. It
// says which transaction the process had open.
func (p *stageProc) kill() string {
	p.mu.Lock()
	r := p.cur
	r.killed = true
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	what := fmt.Sprintf("SIGKILL pid %d%s", r.cmd.Process.Pid, inTxn(r.open, r.ending))
	p.note(what)
	p.mu.Unlock()
	<-r.exited
	return what
}

func inTxn(txn string, ending bool) string {
	switch {
	case txn == "":
		return ", between transactions"
	case ending:
		return ", ending transaction " + txn
	}
	return ", in transaction " + txn
}

func drain(ch chan string) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// waitStages waits up to d for a stage to have a transaction open (or, if
// ending, to be ending one), and returns the transactions open then.
func waitStages(stages []*stageProc, ending bool, d time.Duration) []string {
	for deadline := time.Now().Add(d); ; time.Sleep(time.Millisecond) {
		var open []string
		hit := false
		for _, s := range stages {
			if txn, end := s.openTxn(); txn != "" {
				state := "open"
				if end {
					state = "ending"
				}
				open = append(open, txn+" "+state)
				hit = hit || !ending || end
			}
		}
		if hit || time.Now().After(deadline) {
			return open
		}
	}
}

// waitOpen waits up to d for the running process to have a transaction
// open, so a fault lands inside one.
func (p *stageProc) waitOpen(d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if txn, _ := p.openTxn(); txn != "" {
			return
		}
	}
}

// openTxn is the transaction the running process has open, if any, and
// whether it is ending it.
func (p *stageProc) openTxn() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return "", false
	}
	return p.cur.open, p.cur.ending
}

// zombie stops the running process (SIGSTOP), starts a replacement with
// the same transactional id, which fences it, lets the replacement work
// for a while, then resumes the old process: it must find itself fenced
// and exit, and nothing it does may reach a read_committed reader. It is
// killed if it has not exited 8s after resuming: it finds itself fenced only
// once it has something to write.
func (p *stageProc) zombie(paused time.Duration) string {
	p.mu.Lock()
	old := p.cur
	old.killed = true // its end is expected
	_ = old.cmd.Process.Signal(syscall.SIGSTOP)
	what := fmt.Sprintf("SIGSTOP pid %d%s", old.cmd.Process.Pid, inTxn(old.open, old.ending))
	p.note(what)
	if err := p.start(); err != nil {
		p.mu.Unlock()
		_ = old.cmd.Process.Signal(syscall.SIGCONT)
		p.t.Errorf("start a replacement of stage %s: %v", p.txnID, err)
		return what
	}
	p.mu.Unlock()
	time.Sleep(paused)
	p.note(fmt.Sprintf("SIGCONT pid %d (zombie)", old.cmd.Process.Pid))
	_ = old.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-old.exited:
		what += fmt.Sprintf("; resumed, it exited (%v)", old.err)
	case <-time.After(8 * time.Second):
		what += "; resumed, it ran on 8s (fenced, but with nothing to do) and was killed"
		_ = old.cmd.Process.Signal(syscall.SIGKILL)
		<-old.exited
	}
	p.note(what)
	return what
}

// freeze stops the running process (SIGSTOP) for d, longer than its
// transaction timeout, so the coordinator aborts its open transaction
// and bumps its epoch, and the group drops it; then resumes it (SIGCONT).
// It must not commit that transaction: it may recover (a new epoch,
// KIP-588) or exit, and the supervisor restarts it then.
func (p *stageProc) freeze(d time.Duration) string {
	p.mu.Lock()
	r := p.cur
	_ = r.cmd.Process.Signal(syscall.SIGSTOP)
	what := fmt.Sprintf("SIGSTOP pid %d%s", r.cmd.Process.Pid, inTxn(r.open, r.ending))
	p.note(what)
	r.frozen = true // an exit after it is expected
	p.mu.Unlock()
	time.Sleep(d)
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-r.exited:
		what += fmt.Sprintf("; resumed after %v, it exited (%v)", d, r.err)
	case <-time.After(2 * time.Second):
		what += fmt.Sprintf("; resumed after %v, it runs on", d)
	}
	p.note(what)
	return what
}

// stop ends the stage with SIGTERM (the process finishes its transaction
// and leaves the group), or SIGKILL after 20s.
func (p *stageProc) stop() {
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	r := p.cur
	p.mu.Unlock()
	if r == nil {
		return // never started
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.exited
	}
	<-p.done
}

func (p *stageProc) logTail(lines int) string {
	raw, _ := os.ReadFile(p.logPath)
	all := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func stageStarts(stages []*stageProc) string {
	var parts []string
	for _, s := range stages {
		s.mu.Lock()
		parts = append(parts, fmt.Sprintf("%s %d (own exits %d)", s.txnID, s.starts, len(s.exits)))
		s.mu.Unlock()
	}
	return strings.Join(parts, ", ")
}
