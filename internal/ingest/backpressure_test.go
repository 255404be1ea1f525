package ingest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// TestSyslogBackpressure stops the broker: the TCP listener stops reading
// once the budget is full (the sender's writes block), UDP counts what it
// cannot accept, and every TCP line arrives once the broker is back.
func TestSyslogBackpressure(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, "")
	addr := b.Addr
	svc := startIngest(t, addr, func(c *Config) { c.MemoryBudget = 16 << 10 })
	b.Close()

	c := dialTCP(t, svc.SyslogTCPAddr())
	// A small send buffer makes the stall come sooner.
	_ = c.(*net.TCPConn).SetWriteBuffer(8 << 10)
	lineFrom := func(host string, i int) []byte {
		return []byte(fmt.Sprintf("<38>Nov 26 10:00:00 %s sshd[%d]: Failed password for user%d from 10.0.0.1 port %d ssh2\n", host, i, i, 1000+i))
	}
	line := func(i int) []byte { return lineFrom("bp-host", i) }
	// Write until the writes stall: kernel socket buffers fill once the
	// service stops reading. Lines are small, so this takes a few MiB.
	sent := 0
	var werr error
	for sent < 200000 {
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, werr = c.Write(line(sent)); werr != nil {
			break
		}
		sent++
	}
	var ne net.Error
	if !errors.As(werr, &ne) || !ne.Timeout() {
		t.Fatalf("writes never blocked after %d lines (err %v)", sent, werr)
	}
	// A write that timed out may have been partly written; it is the only
	// line that may be cut.
	t.Logf("TCP writes blocked after %d lines; budget used %d", sent, svc.budget.Used())

	// UDP cannot block: what does not fit is counted.
	u, err := net.Dial("udp", svc.SyslogUDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	// Another host: UDP lines the budget did accept must not count as TCP
	// lines below.
	for i := 0; i < 50; i++ {
		if _, err := u.Write(lineFrom("bp-udp-host", i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for svc.Stats().UDPDropped.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if svc.Stats().UDPDropped.Load() == 0 {
		t.Errorf("no UDP drops counted with a full budget")
	}

	// Broker back: the connection drains; every complete line arrives.
	b2 := startBroker(t, dir, addr)
	_ = c.SetWriteDeadline(time.Time{})
	c.Close()
	tcpLines := func(rs []gotRecord) int {
		n := 0
		for _, r := range rs {
			if r.Key == "bp-host" {
				n++
			}
		}
		return n
	}
	got := consume(t, b2.Addr, []string{"ocsf.authentication"}, 120*time.Second, func(rs []gotRecord) bool { return tcpLines(rs) >= sent })
	seen := map[string]bool{}
	for _, r := range got {
		if r.Key == "bp-host" {
			seen[field(r.Value, "user.name").(string)] = true
		}
	}
	for i := 0; i < sent; i++ {
		if !seen[fmt.Sprintf("user%d", i)] {
			t.Errorf("line %d accepted over TCP but not delivered", i)
			break
		}
	}
	if os.Getenv("VIGIL_TEST_DEBUG") != "" {
		t.Logf("stats %v", svc.Stats().Snapshot())
	}
	if err := svc.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}
