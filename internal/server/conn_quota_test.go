package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/config"
)

// tryConnect connects to addr from the local address from, sends
// ApiVersions and reports whether it was answered; if not, the connection
// must have been closed by the broker (not left hanging), and how long
// that took.
func tryConnect(t *testing.T, addr, from string) (served bool, closedAfter time.Duration) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	start := time.Now()
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	defer nc.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "storm", "1.0"
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("storm")).AppendRequest(nil, req, 1)); err != nil {
		t.Fatalf("write: %v", err)
	}
	var size [4]byte
	_, err = io.ReadFull(bufio.NewReader(nc), size[:])
	switch {
	case err == nil:
		return true, 0
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return false, time.Since(start)
	default:
		t.Fatalf("connection from %s neither answered nor closed: %v", from, err)
		return false, 0
	}
}

func TestConnectionCreationRateQuota(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	alter := func(e kadm.AlterClientQuotaEntry) kadm.AlteredClientQuota {
		t.Helper()
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{e})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	str := func(s string) *string { return &s }
	ipEnt := func(name *string) kadm.ClientQuotaEntity { return kadm.ClientQuotaEntity{{Type: "ip", Name: name}} }
	set := func(key string, v float64) []kadm.AlterClientQuotaOp {
		return []kadm.AlterClientQuotaOp{{Key: key, Value: v}}
	}

	// Kafka's validation: an ip entity takes only connection_creation_rate,
	// a positive integer, alone and naming an address.
	for name, bad := range map[string]kadm.AlterClientQuotaEntry{
		"byte rate on ip":       {Entity: ipEnt(str("127.0.0.1")), Ops: set("producer_byte_rate", 10)},
		"ip with user":          {Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: str("127.0.0.1")}, {Type: "user", Name: str("u")}}, Ops: set("connection_creation_rate", 5)},
		"negative":              {Entity: ipEnt(str("127.0.0.1")), Ops: set("connection_creation_rate", -1)},
		"fractional":            {Entity: ipEnt(nil), Ops: set("connection_creation_rate", 2.5)},
		"not an address":        {Entity: ipEnt(str("not-an-ip")), Ops: set("connection_creation_rate", 5)},
		"connection rate on id": {Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: str("c")}}, Ops: set("connection_creation_rate", 5)},
	} {
		if r := alter(bad); r.Err != kerr.InvalidRequest || r.ErrMessage == "" {
			t.Errorf("%s: %v %q, want INVALID_REQUEST with a message", name, r.Err, r.ErrMessage)
		}
	}

	// 127.0.0.1 may open 2 connections a second; any other address 1000.
	if r := alter(kadm.AlterClientQuotaEntry{Entity: ipEnt(str("127.0.0.1")), Ops: set("connection_creation_rate", 2)}); r.Err != nil {
		t.Fatalf("set ip quota: %v %s", r.Err, r.ErrMessage)
	}
	if r := alter(kadm.AlterClientQuotaEntry{Entity: ipEnt(nil), Ops: set("connection_creation_rate", 1000)}); r.Err != nil {
		t.Fatalf("set default ip quota: %v %s", r.Err, r.ErrMessage)
	}
	ds, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "ip", MatchType: 1}})
	if err != nil || len(ds) != 1 || ds[0].Entity[0].Name != nil || ds[0].Values[0].Key != "connection_creation_rate" || ds[0].Values[0].Value != 1000 {
		t.Fatalf("describe default ip: %v %+v", err, ds)
	}
	ds, err = adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "ip", MatchType: 2}})
	if err != nil || len(ds) != 2 {
		t.Fatalf("describe every ip: %v %+v", err, ds)
	}

	// A storm from 127.0.0.1: Kafka measures the rate over at least ten
	// one-second samples, so the first ~20 connections are served; the
	// ones beyond are accepted, never answered, and closed within Kafka's
	// one-second bound.
	var served, refused int
	for i := range 25 {
		ok, after := tryConnect(t, ts.addr, "127.0.0.1")
		switch {
		case ok && refused > 0:
			t.Fatalf("connection %d served after %d were refused", i, refused)
		case ok:
			served++
		default:
			refused++
			if after > 3*time.Second {
				t.Fatalf("refused connection %d closed only after %v", i, after)
			}
		}
	}
	if served < 15 || served > 22 || refused < 3 {
		t.Fatalf("storm of 25 at 2/s: %d served, %d refused; want ~20 served then the rest refused", served, refused)
	}
	if got := ts.srv.broker.ThrottledConnections(); got != int64(refused) {
		t.Errorf("throttled connections metric %d, want %d", got, refused)
	}
	// Another address, under its (default) rate, is unaffected.
	for i := range 30 {
		if ok, _ := tryConnect(t, ts.addr, "127.0.0.2"); !ok {
			t.Fatalf("connection %d from 127.0.0.2, under the default ip rate, refused", i)
		}
	}
	// The admin client's connection, opened before the storm, still works.
	if _, err := adm.DescribeClientQuotas(ctx, false, nil); err != nil {
		t.Fatalf("existing connection after the storm: %v", err)
	}
}

func TestMaxConnectionCreationRate(t *testing.T) {
	ts := startServer(t, t.TempDir(), func(c *config.Broker) { c.MaxConnectionCreationRate = 2 })
	// Measured over at least ten seconds, 2/s lets ~20 through at once;
	// beyond, the broker waits before serving each (up to a second), as
	// Kafka's acceptor does, and serves them all: none is refused.
	var slow int
	start := time.Now()
	for i := range 23 {
		began := time.Now()
		if ok, _ := tryConnect(t, ts.addr, "127.0.0.1"); !ok {
			t.Fatalf("connection %d refused: the broker-wide rate delays, it does not refuse", i)
		}
		if time.Since(began) > 300*time.Millisecond {
			slow++
		}
	}
	if took := time.Since(start); slow < 2 || took < time.Second {
		t.Fatalf("23 connections at 2/s: %d delayed, all in %v; want the ones past ~20 delayed", slow, took)
	}
}
