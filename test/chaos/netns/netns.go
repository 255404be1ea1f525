// Package netns builds the chaos harness's network: one Linux network
// namespace per node (broker, etcd member, object store), each joined to a
// bridge in the harness's own namespace by a veth pair, and cuts between
// nodes made with nftables inside the nodes' namespaces.
//
// Layout: the bridge holds 10.231.0.1/24, the harness's address, from
// which the Kafka clients of the workload reach every node; node i gets
// its own address on that subnet. A cut between two nodes drops, in each
// node's namespace, every packet to or from the other's address (a named
// nftables set per namespace: `inet chaos` table, `cut` set, input and
// output chains), so it is silent, as a real partition is: connections
// hang and time out rather than fail fast. The harness's address is never
// cut, as the control node of a Jepsen test is never partitioned: clients
// keep reaching a minority broker, which is the case worth testing.
//
// Everything is named with a prefix so a crashed run's leftovers are
// found and removed by the next Setup; nothing else on the host is
// touched. It needs root, iproute2 (`ip`) and nftables (`nft`).
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Prefix names every namespace and link the harness creates.
const Prefix = "vgc"

// Subnet and the harness's (bridge) address.
const (
	HostIP = "10.231.0.1"
	cidr   = 24
	bridge = Prefix + "-br"
)

// Node is one namespace with its address.
type Node struct {
	Name string // short name: b1, e1, s3
	NS   string // namespace name
	IP   string
}

// Net is the harness's network; Close removes it.
type Net struct {
	mu    sync.Mutex
	nodes map[string]*Node
	cuts  map[[2]string]bool // sorted node-name pairs currently cut
}

// Check reports what is missing for the harness's network.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, nftables)")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found: apt-get install iproute2 nftables (.ci/install does)", bin)
		}
	}
	return nil
}

// Setup removes leftovers of an earlier run and builds the bridge and one
// namespace per name, with its address from ips (on HostIP's /24).
func Setup(names []string, ips map[string]string) (*Net, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	Cleanup()
	n := &Net{nodes: map[string]*Node{}, cuts: map[[2]string]bool{}}
	steps := [][]string{
		{"ip", "link", "add", bridge, "type", "bridge"},
		{"ip", "addr", "add", HostIP + "/" + fmt.Sprint(cidr), "dev", bridge},
		{"ip", "link", "set", bridge, "up"},
	}
	if err := run(steps...); err != nil {
		return nil, err
	}
	for _, name := range names {
		node := &Node{Name: name, NS: Prefix + "-" + name, IP: ips[name]}
		host := Prefix + "-" + name + "-h"
		if err := run(
			[]string{"ip", "netns", "add", node.NS},
			[]string{"ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", node.NS},
			[]string{"ip", "link", "set", host, "master", bridge},
			[]string{"ip", "link", "set", host, "up"},
			[]string{"ip", "-n", node.NS, "link", "set", "lo", "up"},
			[]string{"ip", "-n", node.NS, "addr", "add", node.IP + "/" + fmt.Sprint(cidr), "dev", "eth0"},
			[]string{"ip", "-n", node.NS, "link", "set", "eth0", "up"},
		); err != nil {
			n.Close()
			return nil, err
		}
		ruleset := `table inet chaos {
	set cut { type ipv4_addr; }
	chain in { type filter hook input priority 0; policy accept; ip saddr @cut drop; }
	chain out { type filter hook output priority 0; policy accept; ip daddr @cut drop; }
}
`
		if err := nft(node.NS, ruleset); err != nil {
			n.Close()
			return nil, err
		}
		n.nodes[name] = node
	}
	return n, nil
}

// Cleanup removes every namespace and link with the harness's prefix.
func Cleanup() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], Prefix+"-") {
			exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, Prefix+"-") {
			exec.Command("ip", "link", "del", name).Run()
		}
	}
}

// Close removes the network.
func (n *Net) Close() { Cleanup() }

// Node returns a node by short name.
func (n *Net) Node(name string) *Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[name]
}

// Cut drops all traffic between every node of a and every node of b.
func (n *Net) Cut(a, b []string) error {
	return n.change(a, b, true)
}

// Heal removes every cut.
func (n *Net) Heal() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for _, node := range n.nodes {
		errs = append(errs, nft(node.NS, "flush set inet chaos cut\n"))
	}
	clear(n.cuts)
	return errors.Join(errs...)
}

// Cuts lists the pairs cut now, as "a-b".
func (n *Net) Cuts() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for p := range n.cuts {
		out = append(out, p[0]+"-"+p[1])
	}
	sort.Strings(out)
	return out
}

func (n *Net) change(a, b []string, cut bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	add := map[string][]string{} // namespace -> addresses to drop
	for _, x := range a {
		for _, y := range b {
			nx, ny := n.nodes[x], n.nodes[y]
			if nx == nil || ny == nil {
				return fmt.Errorf("netns: unknown node %q or %q", x, y)
			}
			if x == y {
				continue
			}
			add[nx.NS] = append(add[nx.NS], ny.IP)
			add[ny.NS] = append(add[ny.NS], nx.IP)
			p := [2]string{x, y}
			if y < x {
				p = [2]string{y, x}
			}
			n.cuts[p] = cut
		}
	}
	for ns, ips := range add {
		if err := nft(ns, fmt.Sprintf("add element inet chaos cut { %s }\n", strings.Join(ips, ", "))); err != nil {
			return err
		}
	}
	return nil
}

// Exec builds a command that runs in node's namespace (ip netns exec
// replaces itself with the program, so the process's pid is the
// program's: signals reach it directly).
func (n *Net) Exec(node string, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Node(node).NS, name}, args...)...)
}

// Listen opens a TCP listener inside node's namespace (the harness's S3
// fault proxy listens in the object store's namespace, so cuts between
// brokers and the store apply to it).
func (n *Net) Listen(node, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNamespace(n.Node(node).NS, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// DialContext dials from inside node's namespace.
func (n *Net) DialContext(ctx context.Context, node, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNamespace(n.Node(node).NS, func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
}

// Dial connects to addr from inside node's namespace: the probe that shows
// a cut is real (it must fail) and healed (it must succeed).
func (n *Net) Dial(node, addr string, timeout time.Duration) error {
	nd := n.Node(node)
	if nd == nil {
		return fmt.Errorf("netns: unknown node %q", node)
	}
	var conn net.Conn
	err := inNamespace(nd.NS, func() error {
		// The socket is created on this thread, in the node's namespace;
		// connecting is then independent of the thread.
		d := net.Dialer{Timeout: timeout}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var err error
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	if conn != nil {
		conn.Close()
	}
	return err
}

// inNamespace runs fn on a thread that has entered the namespace ns.
func inNamespace(ns string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and dies with its goroutine: it must
		// never run other goroutines in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("setns back: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func nft(ns, script string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", ns, err, out)
	}
	return nil
}

func run(cmds ...[]string) error {
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	return nil
}
