package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/vigilhq/vigil/test/chaos/netns"
	"github.com/vigilhq/vigil/test/chaos/s3proxy"
)

// The nodes of a campaign's cluster and their addresses on the bridge.
var (
	brokerNames = []string{"b1", "b2", "b3"}
	etcdNames   = []string{"e1", "e2", "e3"}
	storeName   = "s3"
	nodeIPs     = map[string]string{
		"b1": "10.231.0.11", "b2": "10.231.0.12", "b3": "10.231.0.13",
		"e1": "10.231.0.21", "e2": "10.231.0.22", "e3": "10.231.0.23",
		"s3": "10.231.0.30",
	}
)

const (
	kafkaPort  = 9092
	adminPort  = 9644
	etcdPort   = 2379
	peerPort   = 2380
	proxyPort  = 9000
	gwAddr     = "127.0.0.1:7070" // versitygw, reachable only inside the store's namespace
	s3Access   = "VIGILCHAOSACCESSKEY"
	s3Secret   = "vigil-chaos-secret-key-0123456789"
	etcdPrefix = "/vigil/chaos"
	leaseTTL   = 5 * time.Second
	// brokenUploadInterval is the broken build's --upload-interval.
	brokenUploadInterval = 3 * time.Second
)

// proc is one process of the cluster, started in its node's namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *proc) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// exitErr is how the process ended (nil while it runs).
func (p *proc) exitErr() error {
	if p == nil || p.running() {
		return nil
	}
	if p.err != nil {
		return p.err
	}
	return fmt.Errorf("exited: %v", p.cmd.ProcessState)
}

func (p *proc) signal(sig syscall.Signal) error {
	if !p.running() {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// kill SIGKILLs the process (SIGCONT first, so a paused one dies too) and
// waits for it.
func (p *proc) kill() {
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Cluster is three brokers, three etcd members and versitygw behind the
// fault proxy, each in its own network namespace.
type Cluster struct {
	bins   Binaries
	dir    string
	net    *netns.Net
	proxy  *s3proxy.Proxy
	proxyS *http.Server
	logf   func(string, ...any)
	broken bool // run the chaosbroken build

	mu      sync.Mutex
	brokers map[string]*proc
	etcds   map[string]*proc
	gw      *proc
	tmpfs   string // versitygw's root, a tmpfs the disk-full fault fills
	etcd    *clientv3.Client
}

// startCluster builds the network and starts every process.
func startCluster(bins Binaries, dir string, seed uint64, broken bool, logf func(string, ...any)) (_ *Cluster, err error) {
	names := append(append(append([]string{}, brokerNames...), etcdNames...), storeName)
	n, err := netns.Setup(names, nodeIPs)
	if err != nil {
		return nil, err
	}
	c := &Cluster{bins: bins, dir: dir, net: n, logf: logf, broken: broken, brokers: map[string]*proc{}, etcds: map[string]*proc{}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for _, e := range etcdNames {
		if err := c.startEtcd(e, true); err != nil {
			return nil, err
		}
	}
	if c.etcd, err = clientv3.New(clientv3.Config{Endpoints: c.etcdEndpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()}); err != nil {
		return nil, err
	}
	if err := c.waitEtcd(60 * time.Second); err != nil {
		return nil, err
	}
	if err := c.startStore(seed); err != nil {
		return nil, err
	}
	for _, b := range brokerNames {
		if err := c.StartBroker(b); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) etcdEndpoints() []string {
	var eps []string
	for _, e := range etcdNames {
		eps = append(eps, fmt.Sprintf("%s:%d", nodeIPs[e], etcdPort))
	}
	return eps
}

// start runs a program in node's namespace with its output in log.
func (c *Cluster) start(node, name, log string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.OpenFile(filepath.Join(c.dir, log), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "==== %s start %s\n", time.Now().Format(time.RFC3339Nano), name)
	cmd := c.net.Exec(node, bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if len(env) > 0 && strings.HasPrefix(env[0], "PATH=") {
		cmd.Env = env // the whole environment (versitygw reads ROOT_* and VGW_* variables)
	} else {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (c *Cluster) startEtcd(name string, initial bool) error {
	ip := nodeIPs[name]
	var members []string
	for _, e := range etcdNames {
		members = append(members, fmt.Sprintf("%s=http://%s:%d", e, nodeIPs[e], peerPort))
	}
	state := "new"
	if !initial {
		state = "existing"
	}
	p, err := c.start(name, "etcd "+name, name+".log", nil, c.bins.Etcd,
		"--name", name, "--data-dir", filepath.Join(c.dir, name),
		"--listen-client-urls", fmt.Sprintf("http://%s:%d", ip, etcdPort),
		"--advertise-client-urls", fmt.Sprintf("http://%s:%d", ip, etcdPort),
		"--listen-peer-urls", fmt.Sprintf("http://%s:%d", ip, peerPort),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://%s:%d", ip, peerPort),
		"--initial-cluster", strings.Join(members, ","), "--initial-cluster-state", state,
		"--initial-cluster-token", "vigil-chaos", "--log-level", "warn",
		"--auto-compaction-retention", "1m")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.etcds[name] = p
	c.mu.Unlock()
	return nil
}

// waitEtcd waits until the etcd cluster answers a linearizable read.
func (c *Cluster) waitEtcd(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.etcd.Get(ctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd not answering after %v: %w", d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startStore mounts a tmpfs for versitygw, starts it inside the store's
// namespace on loopback, and starts the fault proxy in front of it on
// the store's address.
func (c *Cluster) startStore(seed uint64) error {
	c.tmpfs = filepath.Join(c.dir, "s3root")
	if err := os.MkdirAll(c.tmpfs, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4g", "vigil-chaos", c.tmpfs).CombinedOutput(); err != nil {
		return fmt.Errorf("mount tmpfs: %v: %s", err, out)
	}
	if err := os.Mkdir(filepath.Join(c.tmpfs, "vigil"), 0o755); err != nil {
		return err
	}
	if err := c.StartGateway(); err != nil {
		return err
	}
	px, err := s3proxy.New("http://"+gwAddr, seed, func(ctx context.Context, _, _ string) (net.Conn, error) {
		return c.net.DialContext(ctx, storeName, gwAddr)
	})
	if err != nil {
		return err
	}
	ln, err := c.net.Listen(storeName, fmt.Sprintf("%s:%d", nodeIPs[storeName], proxyPort))
	if err != nil {
		return err
	}
	c.proxy = px
	c.proxyS = &http.Server{Handler: px}
	go c.proxyS.Serve(ln)
	return nil
}

// StartGateway (re)starts versitygw and waits until it answers.
func (c *Cluster) StartGateway() error {
	p, err := c.start(storeName, "versitygw", "versitygw.log", []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir}, c.bins.Versitygw,
		"--port", gwAddr, "--access", s3Access, "--secret", s3Secret, "--quiet", "posix", c.tmpfs)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.gw = p
	c.mu.Unlock()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if conn, err := c.net.DialContext(context.Background(), storeName, gwAddr); err == nil {
			conn.Close()
			return nil
		}
		if !p.running() || time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not start (see versitygw.log)")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) objectStoreURL() string {
	return fmt.Sprintf("s3://vigil/chaos?endpoint=http://%s:%d&path_style=true&timeout=10s", nodeIPs[storeName], proxyPort)
}

// BrokerAddr is a broker's Kafka address.
func BrokerAddr(b string) string { return fmt.Sprintf("%s:%d", nodeIPs[b], kafkaPort) }

// Seeds are every broker's Kafka address.
func Seeds() []string {
	var out []string
	for _, b := range brokerNames {
		out = append(out, BrokerAddr(b))
	}
	return out
}

func brokerID(b string) int { id, _ := strconv.Atoi(b[1:]); return id }

func (c *Cluster) clockFile(b string) string { return filepath.Join(c.dir, b+".clock") }

// StartBroker starts (or restarts) a broker and waits until it accepts
// Kafka connections.
func (c *Cluster) StartBroker(b string) error {
	bin := c.bins.Vigil
	if c.broken {
		bin = c.bins.Broken
	}
	ip := nodeIPs[b]
	data := filepath.Join(c.dir, b+"-data")
	os.MkdirAll(data, 0o755)
	os.WriteFile(c.clockFile(b), []byte("0\n"), 0o644)
	eps := strings.Join(c.etcdEndpoints(), ",")
	args := []string{"serve", "--node-id", strconv.Itoa(brokerID(b)), "--zone", "z" + b[1:],
		"--listen", fmt.Sprintf("%s:%d", ip, kafkaPort), "--admin-listen", fmt.Sprintf("%s:%d", ip, adminPort),
		"--data-dir", data, "--metadata", "etcd://" + eps + etcdPrefix, "--object-store", c.objectStoreURL(),
		"--wal", "object", "--lease-ttl", leaseTTL.String(), "--group-initial-rebalance-delay", "500ms",
		"--default-partitions", "4"}
	if c.broken {
		// The broken build counts a write durable once acknowledged, so
		// the segment uploader (every 250 ms on S3) usually put it in a
		// segment object within the 300 ms before its WAL chunk, and a
		// kill then lost nothing: a CI run of six kills lost no write.
		// Uploading every 3 s leaves most kills a window.
		args = append(args, "--upload-interval", brokenUploadInterval.String())
	}
	p, err := c.start(b, "broker "+b, b+".log",
		[]string{"VIGIL_CHAOS_CLOCK_FILE=" + c.clockFile(b), "AWS_ACCESS_KEY_ID=" + s3Access, "AWS_SECRET_ACCESS_KEY=" + s3Secret},
		bin, args...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.brokers[b] = p
	c.mu.Unlock()
	for deadline := time.Now().Add(60 * time.Second); ; {
		if conn, err := net.DialTimeout("tcp", BrokerAddr(b), 500*time.Millisecond); err == nil {
			conn.Close()
			return nil
		}
		if !p.running() {
			return fmt.Errorf("broker %s exited at start: %v (see %s.log)", b, p.err, b)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker %s not accepting connections after 60s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Broker returns a broker's process.
func (c *Cluster) Broker(b string) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.brokers[b]
}

// Etcd returns an etcd member's process.
func (c *Cluster) Etcd(e string) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.etcds[e]
}

// Registration returns the lease of broker b's registration in etcd (0:
// not registered); ok is false if etcd did not answer.
func (c *Cluster) Registration(b string) (lease int64, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.etcd.Get(ctx, fmt.Sprintf("%s/cluster/brokers/%010d", etcdPrefix, brokerID(b)))
	if err != nil {
		return 0, false
	}
	if len(resp.Kvs) == 0 {
		return 0, true
	}
	return resp.Kvs[0].Lease, true
}

// Metric scrapes one sample of a broker's /metrics (name with labels as
// printed, e.g. `vigil_partitions_led`); ok false if it did not answer.
func Metric(b, name string) (float64, bool) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://%s:%d/metrics", nodeIPs[b], adminPort))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, true
}

// Readyz returns a broker's /readyz status and body.
func Readyz(b string) (int, string, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://%s:%d/readyz", nodeIPs[b], adminPort))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// Close stops everything and removes the network.
func (c *Cluster) Close() {
	c.mu.Lock()
	var ps []*proc
	for _, p := range c.brokers {
		ps = append(ps, p)
	}
	for _, p := range c.etcds {
		ps = append(ps, p)
	}
	ps = append(ps, c.gw)
	c.mu.Unlock()
	for _, p := range ps {
		p.kill()
	}
	if c.proxy != nil {
		c.proxy.Set(s3proxy.Fault{})
	}
	if c.proxyS != nil {
		c.proxyS.Close()
	}
	if c.etcd != nil {
		c.etcd.Close()
	}
	if c.tmpfs != "" {
		exec.Command("umount", "-l", c.tmpfs).Run()
	}
	c.net.Close()
}

// Logs returns the tail of a process's log, for failures.
func (c *Cluster) LogTail(name string, lines int) string {
	raw, err := os.ReadFile(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return ""
	}
	ls := strings.Split(string(raw), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}
