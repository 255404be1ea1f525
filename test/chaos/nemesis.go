package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/test/chaos/checker"
	"github.com/vigilhq/vigil/test/chaos/s3proxy"
)

// A fault is applied, shown to have happened, held, healed, and shown
// healed. run returns what demonstrated it; an error means the fault
// could not be demonstrated (the campaign then fails: a fault that did
// not happen proves nothing).
type fault struct {
	name string
	what string
	run  func(n *Nemesis, hold time.Duration) (shown string, err error)
}

// faults is every fault kind, in the order the docs list them.
var faults = []fault{
	{"kill", "SIGKILL a broker, restart it after the hold", (*Nemesis).kill},
	{"pause", "SIGSTOP a broker past its lease, then SIGCONT", (*Nemesis).pause},
	{"partition-brokers", "cut one broker from the other brokers", func(n *Nemesis, d time.Duration) (string, error) {
		b := n.pick(brokerNames)
		return n.cut([]string{b}, others(brokerNames, b), d)
	}},
	{"partition-etcd", "cut one broker from every etcd member", func(n *Nemesis, d time.Duration) (string, error) {
		return n.cut([]string{n.pick(brokerNames)}, etcdNames, d)
	}},
	{"partition-store", "cut one broker from the object store", func(n *Nemesis, d time.Duration) (string, error) {
		return n.cut([]string{n.pick(brokerNames)}, []string{storeName}, d)
	}},
	{"partition-majority", "split brokers and etcd into a majority and a minority (one broker, one member)", func(n *Nemesis, d time.Duration) (string, error) {
		b, e := n.pick(brokerNames), n.pick(etcdNames)
		major := append(append(others(brokerNames, b), others(etcdNames, e)...), storeName)
		return n.cut([]string{b, e}, major, d)
	}},
	{"etcd-kill", "SIGKILL one etcd member, restart it after the hold", (*Nemesis).etcdKill},
	{"etcd-outage", "SIGKILL every etcd member, restart them after the hold", (*Nemesis).etcdOutage},
	{"s3-latency", "the store's answers delayed 200-600 ms", proxyFault(s3proxy.Fault{Kind: s3proxy.Latency, Delay: 400 * time.Millisecond})},
	{"s3-slowdown", "half the store's answers 503 SlowDown", proxyFault(s3proxy.Fault{Kind: s3proxy.SlowDown, Rate: 0.5})},
	{"s3-500", "half the store's answers 500 InternalError", proxyFault(s3proxy.Fault{Kind: s3proxy.Error500, Rate: 0.5})},
	{"s3-reset", "a third of the store's connections reset, before or after the request reached it", proxyFault(s3proxy.Fault{Kind: s3proxy.Reset, Rate: 0.33})},
	{"s3-stuck-put", "every PUT held until the hold ends, then forwarded", proxyFault(s3proxy.Fault{Kind: s3proxy.StuckPut})},
	{"disk-full", "the object store's disk (the object WAL's home) filled up", (*Nemesis).diskFull},
	{"clock-jump", "a broker's wall clock stepped by ±5 s to ±10 min, or ±1 h to ±6 h, then back", (*Nemesis).clockJump},
}

func faultNames() []string {
	var out []string
	for _, f := range faults {
		out = append(out, f.name)
	}
	return out
}

// Nemesis injects faults into a cluster, one at a time.
type Nemesis struct {
	c    *Cluster
	h    *History
	rnd  *rand.Rand
	logf func(string, ...any)
}

func (n *Nemesis) pick(from []string) string { return from[n.rnd.IntN(len(from))] }

func others(all []string, not string) []string {
	var out []string
	for _, x := range all {
		if x != not {
			out = append(out, x)
		}
	}
	return out
}

// Inject runs one fault and records it.
func (n *Nemesis) Inject(f fault, hold time.Duration) error {
	n.logf("fault %s (hold %v)", f.name, hold.Round(100*time.Millisecond))
	n.h.Add(checker.Op{Proc: "nemesis", F: "start", Value: f.name})
	shown, err := f.run(n, hold)
	op := checker.Op{Proc: "nemesis", F: checker.Fault, Value: f.name, Detail: shown}
	if err != nil {
		op.Err = err.Error()
	}
	n.h.Add(op)
	n.h.Add(checker.Op{Proc: "nemesis", F: checker.Heal, Value: f.name})
	if err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	n.logf("  %s", shown)
	return nil
}

func (n *Nemesis) kill(hold time.Duration) (string, error) {
	b := n.pick(brokerNames)
	p := n.c.Broker(b)
	if !p.running() {
		return "", fmt.Errorf("broker %s is not running", b)
	}
	old, _ := n.c.Registration(b)
	p.kill()
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return "", fmt.Errorf("broker %s ended with %v, not SIGKILL", b, p.cmd.ProcessState)
	}
	time.Sleep(hold)
	if err := n.c.StartBroker(b); err != nil {
		return "", err
	}
	// The new process registers under a lease of its own, once the dead
	// one's lease has expired.
	d, err := n.waitRegistered(b, true, old, 30*time.Second)
	if err != nil {
		if p := n.c.Broker(b); !p.running() {
			return "", fmt.Errorf("%w; the restarted broker exited (%v); its log ended:\n%s", err, p.exitErr(), n.c.LogTail(b, 20))
		}
		return "", err
	}
	return fmt.Sprintf("broker %s died of SIGKILL; restarted after %v, registered under a new lease %v later", b, hold.Round(time.Millisecond), d.Round(time.Millisecond)), nil
}

// waitRegistered waits until b is registered under a lease other than
// not (want true), or is not registered at all (want false).
func (n *Nemesis) waitRegistered(b string, want bool, not int64, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		if lease, ok := n.c.Registration(b); ok && (lease != 0 && lease != not) == want {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("broker %s registered=%v (under a new lease) not seen within %v", b, want, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *Nemesis) pause(hold time.Duration) (string, error) {
	b := n.pick(brokerNames)
	p := n.c.Broker(b)
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return "", err
	}
	start := time.Now()
	gone, err := n.waitRegistered(b, false, 0, leaseTTL+15*time.Second)
	if err != nil {
		p.signal(syscall.SIGCONT)
		return "", fmt.Errorf("paused, but its lease never expired: %w", err)
	}
	time.Sleep(time.Until(start.Add(max(hold, gone+time.Second))))
	paused := time.Since(start)
	if err := p.signal(syscall.SIGCONT); err != nil {
		return "", err
	}
	back, err := n.waitRegistered(b, true, 0, 30*time.Second)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("broker %s SIGSTOPped %v; its lease expired (registration gone from etcd) %v after the stop; rejoined %v after SIGCONT",
		b, paused.Round(time.Millisecond), gone.Round(time.Millisecond), back.Round(time.Millisecond)), nil
}

// port is the service port a probe dials on a node.
func port(node string) int {
	switch node[0] {
	case 'b':
		return kafkaPort
	case 'e':
		return etcdPort
	}
	return proxyPort
}

func (n *Nemesis) cut(a, b []string, hold time.Duration) (string, error) {
	if err := n.c.net.Cut(a, b); err != nil {
		return "", err
	}
	// The probe: a connection across the cut must fail.
	from, to := a[0], b[n.rnd.IntN(len(b))]
	addr := fmt.Sprintf("%s:%d", nodeIPs[to], port(to))
	if err := n.c.net.Dial(from, addr, time.Second); err == nil {
		n.c.net.Heal()
		return "", fmt.Errorf("cut %v | %v: %s still connected to %s", a, b, from, addr)
	}
	time.Sleep(hold)
	if err := n.c.net.Heal(); err != nil {
		return "", err
	}
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = n.c.net.Dial(from, addr, time.Second); err == nil {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("healed, but %s still cannot reach %s: %w", from, addr, err)
	}
	return fmt.Sprintf("cut %s | %s for %v: %s could not connect to %s during it, could after", strings.Join(a, ","), strings.Join(b, ","),
		hold.Round(time.Millisecond), from, addr), nil
}

func (n *Nemesis) etcdKill(hold time.Duration) (string, error) {
	e := n.pick(etcdNames)
	p := n.c.Etcd(e)
	p.kill()
	addr := fmt.Sprintf("%s:%d", nodeIPs[e], etcdPort)
	if err := n.c.net.Dial(e, addr, time.Second); err == nil {
		return "", fmt.Errorf("etcd %s killed, but %s still accepts connections", e, addr)
	}
	time.Sleep(hold)
	if err := n.c.startEtcd(e, false); err != nil {
		return "", err
	}
	if err := n.c.waitEtcd(60 * time.Second); err != nil {
		return "", err
	}
	return fmt.Sprintf("etcd member %s SIGKILLed (its port refused connections) for %v, restarted; the cluster answers", e, hold.Round(time.Millisecond)), nil
}

// etcdOutage kills every member. Once the brokers' leases can no longer
// be vouched for, each running broker must say so: the metric
// vigil_cluster_lease_confirmed drops to 0 and /readyz answers 503.
func (n *Nemesis) etcdOutage(hold time.Duration) (string, error) {
	for _, e := range etcdNames {
		n.c.Etcd(e).kill()
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, gerr := n.c.etcd.Get(ctx, "health")
	cancel()
	if gerr == nil {
		return "", errors.New("every etcd member killed, yet a read succeeded")
	}
	var err error
	hold = max(hold, leaseTTL+3*time.Second)
	time.Sleep(leaseTTL + 2*time.Second)
	var said []string
	for _, b := range brokerNames {
		if !n.c.Broker(b).running() {
			continue
		}
		v, ok := Metric(b, "vigil_cluster_lease_confirmed")
		code, body, _ := Readyz(b)
		if !ok || v != 0 || code != 503 {
			said = append(said, fmt.Sprintf("%s: NOT reported (lease_confirmed=%v, /readyz %d %q)", b, v, code, body))
			err = fmt.Errorf("broker %s did not report the etcd outage (vigil_cluster_lease_confirmed=%v, /readyz %d)", b, v, code)
			continue
		}
		said = append(said, fmt.Sprintf("%s: lease_confirmed=0, /readyz 503 %q", b, body))
	}
	time.Sleep(time.Until(start.Add(hold)))
	for _, e := range etcdNames {
		if serr := n.c.startEtcd(e, false); serr != nil {
			return "", serr
		}
	}
	if werr := n.c.waitEtcd(60 * time.Second); werr != nil {
		return "", werr
	}
	return fmt.Sprintf("every etcd member SIGKILLed for %v (reads failed); brokers said: %s", time.Since(start).Round(time.Millisecond), strings.Join(said, "; ")), err
}

// proxyFault sets f on the S3 proxy for the hold, and past it (at most
// faultGrace more) until it has been injected into one request: after
// some faults (a partition, a stuck PUT) the workload's producers may
// send nothing for seconds, and then the brokers have nothing to put.
func proxyFault(f s3proxy.Fault) func(*Nemesis, time.Duration) (string, error) {
	return func(n *Nemesis, hold time.Duration) (string, error) {
		start := time.Now()
		before := n.c.proxy.Injected()[f.Kind]
		requests := n.c.proxy.Requests()
		n.c.proxy.Set(f)
		time.Sleep(hold)
		for n.c.proxy.Injected()[f.Kind] == before && time.Since(start) < hold+faultGrace {
			time.Sleep(100 * time.Millisecond)
		}
		n.c.proxy.Set(s3proxy.Fault{})
		got, held := n.c.proxy.Injected()[f.Kind]-before, time.Since(start)
		if got == 0 {
			return "", fmt.Errorf("the proxy injected no %s in %v (%d requests reached it)", f.Kind, held, n.c.proxy.Requests()-requests)
		}
		return fmt.Sprintf("proxy injected %s into %d requests over %v", f.Kind, got, held.Round(time.Millisecond)), nil
	}
}

// faultGrace is how much longer than its hold a fault of the store (the
// proxy's, a full disk) may last while it has not yet been shown to act.
const faultGrace = 15 * time.Second

// diskFull fills the store's tmpfs with a ballast file, so versitygw can
// write nothing: WAL chunk and segment PUTs fail until it is removed.
func (n *Nemesis) diskFull(hold time.Duration) (string, error) {
	ballast := filepath.Join(n.c.tmpfs, ".ballast")
	f, err := os.Create(ballast)
	if err != nil {
		return "", err
	}
	defer os.Remove(ballast)
	var st unix.Statfs_t
	if err := unix.Statfs(n.c.tmpfs, &st); err != nil {
		f.Close()
		return "", err
	}
	free := int64(st.Bavail) * st.Bsize
	// Fill it all; what tmpfs cannot give is fine, the rest is filled below.
	unix.Fallocate(int(f.Fd()), 0, 0, free)
	for chunk := int64(1 << 20); chunk >= 4096; chunk /= 4 {
		for {
			size, _ := f.Seek(0, 2)
			if unix.Fallocate(int(f.Fd()), 0, size, chunk) != nil {
				break
			}
		}
	}
	f.Close()
	unix.Statfs(n.c.tmpfs, &st)
	left := int64(st.Bavail) * st.Bsize
	if left > 1<<20 {
		return "", fmt.Errorf("could not fill the store's disk: %d bytes still free", left)
	}
	// The brokers PUT when a chunk or segment is due, and may still be
	// backing off from the fault before (a stuck PUT, an outage), so the
	// disk stays full past the hold until the store has refused one PUT,
	// for at most faultGrace more: only a store nobody writes to then
	// leaves the fault undemonstrated.
	start := time.Now()
	answers := n.c.proxy.Answers()
	time.Sleep(hold)
	refused := n.c.proxy.Answers()["PUT 5xx"] - answers["PUT 5xx"]
	for refused == 0 && time.Since(start) < hold+faultGrace {
		time.Sleep(100 * time.Millisecond)
		refused = n.c.proxy.Answers()["PUT 5xx"] - answers["PUT 5xx"]
	}
	full := time.Since(start)
	os.Remove(ballast)
	if refused == 0 {
		var during []string
		for k, v := range n.c.proxy.Answers() {
			if d := v - answers[k]; d > 0 {
				during = append(during, fmt.Sprintf("%s: %d", k, d))
			}
		}
		sort.Strings(during)
		return "", fmt.Errorf("the store's disk was full (%d bytes free) for %v, yet no PUT failed (the store's answers meanwhile: %s)", left, full, strings.Join(during, ", "))
	}
	return fmt.Sprintf("store disk full (%d bytes free) for %v: the store refused %d PUTs with 5xx", left, full.Round(time.Millisecond), refused), nil
}

func (n *Nemesis) clockJump(hold time.Duration) (string, error) {
	b := n.pick(brokerNames)
	// Half the steps stay inside SigV4's 15-minute allowance (the broker
	// keeps talking to S3 and only its timestamps move); the other half
	// are hours, which the store refuses to accept requests signed with.
	mag := 5*time.Second + time.Duration(n.rnd.Int64N(int64(10*time.Minute)))
	if n.rnd.IntN(2) == 0 {
		mag = time.Hour + time.Duration(n.rnd.Int64N(int64(5*time.Hour)))
	}
	if n.rnd.IntN(2) == 0 {
		mag = -mag
	}
	if err := n.setClock(b, mag); err != nil {
		return "", err
	}
	probe := n.probeClock(b)
	time.Sleep(hold)
	if err := n.setClock(b, 0); err != nil {
		return "", err
	}
	return fmt.Sprintf("broker %s's wall clock stepped by %v for %v (hook acknowledged; %s), then back", b, mag.Round(time.Second), hold.Round(time.Millisecond), probe), nil
}

// setClock writes a broker's clock offset and waits for the hook in the
// broker process to acknowledge it.
func (n *Nemesis) setClock(b string, off time.Duration) error {
	file := n.c.clockFile(b)
	want := strconv.FormatInt(int64(off), 10) + "\n"
	if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
		return err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, _ := os.ReadFile(file + ".ack"); string(got) == want || (off == 0 && len(got) == 0) {
			return nil
		}
	}
	return fmt.Errorf("broker %s's clock hook did not acknowledge offset %v", b, off)
}

// probeClock asks broker b for its time from outside: the LogAppendTime
// it stamps on a record of a partition it leads. A broker whose clock is
// far off cannot sign its S3 requests (SigV4 allows 15 minutes), so its
// WAL cannot take the record: the probe gives up after a few seconds and
// leaves its client to finish in the background.
func (n *Nemesis) probeClock(b string) string {
	res := make(chan string, 1)
	go func() { res <- n.probeClockSync(b) }()
	select {
	case r := <-res:
		return r
	case <-time.After(6 * time.Second):
		return "no probe: the broker did not acknowledge within 6 s"
	}
}

func (n *Nemesis) probeClockSync(b string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(clientOpts(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(5*time.Second))...)
	if err != nil {
		return "no probe"
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(ctx, clockTopic)
	if err != nil {
		return "no probe: " + err.Error()
	}
	for _, p := range md.Topics[clockTopic].Partitions {
		if p.Leader != int32(brokerID(b)) {
			continue
		}
		r := &kgo.Record{Topic: clockTopic, Partition: p.Partition, Value: []byte("probe")}
		sent := time.Now()
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return "no probe: " + err.Error()
		}
		return fmt.Sprintf("LogAppendTime probe: broker is %v off", r.Timestamp.Sub(sent).Round(time.Second))
	}
	return "no probe: it leads no partition of " + clockTopic
}
