package server

import (
	"context"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/meta/etcdstore/etcdtest"
)

// TestEtcdMetadata runs a broker with --metadata etcd://... against a real
// (embedded) etcd, then restarts it on a fresh data directory that shares
// only the object store: topics, the segment index and the cluster id must
// all come back from etcd.
func TestEtcdMetadata(t *testing.T) {
	endpoint := etcdtest.Start(t)
	objects := filepath.Join(t.TempDir(), "objects")
	withEtcd := func(c *config.Broker) {
		c.Metadata = "etcd://" + endpoint + "/vigil/smoke"
		c.ObjectStore = objects
		c.WAL = "object"
	}
	ctx := testCtx(t, 60*time.Second)
	dir1 := t.TempDir()
	ts := startServer(t, dir1, withEtcd)
	createTopics(t, ctx, ts.admin(t), 2, nil, "events")
	md1, err := ts.admin(t).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	cl := ts.client(t, kgo.DefaultProduceTopic("events"))
	for i := range n {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i % 2)), Value: []byte(fmt.Sprintf("v%03d", i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	consume := func(ts *testServer) map[string]bool {
		t.Helper()
		c := ts.client(t, kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := map[string]bool{}
		for len(got) < n {
			fs := c.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("consumed %d of %d records: %v", len(got), n, err)
			}
			fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
		}
		return got
	}
	if got := consume(ts); len(got) != n {
		t.Fatalf("consumed %d distinct records, want %d", len(got), n)
	}
	if _, err := os.Stat(filepath.Join(dir1, "meta.db")); !os.IsNotExist(err) {
		t.Fatalf("broker with etcd metadata created meta.db (stat err %v)", err)
	}
	ts.close() // flushes and uploads everything

	ts2 := startServer(t, t.TempDir(), withEtcd)
	if md2, err := ts2.admin(t).BrokerMetadata(ctx); err != nil || md2.Cluster != md1.Cluster || md1.Cluster == "" {
		t.Fatalf("cluster id after restart = %q (%v), before %q", md2.Cluster, err, md1.Cluster)
	}
	topics, err := ts2.admin(t).ListTopics(ctx, "events")
	if err != nil || topics["events"].Err != nil || len(topics["events"].Partitions) != 2 {
		t.Fatalf("after restart: topics %v, %v", topics, err)
	}
	if got := consume(ts2); len(got) != n {
		t.Fatalf("after restart consumed %d distinct records, want %d", len(got), n)
	}
}

// TestEtcdOverMutualTLS runs a broker against an etcd that speaks TLS and
// requires client certificates: with the --etcd-* settings it works, and
// without its certificate the broker refuses to start.
func TestEtcdOverMutualTLS(t *testing.T) {
	ca := certstest.NewCA(t, "etcd-ca")
	server := ca.Server("etcd")
	client := ca.Client(pkix.Name{CommonName: "vigil-broker"})
	endpoint := etcdtest.StartTLS(t, etcdtest.TLS{CertFile: server.Cert, KeyFile: server.Key, ClientCAFile: ca.File})
	secured := func(c *config.Broker) {
		c.Metadata = "etcd://" + endpoint + "/vigil/tls"
		c.WAL = "object"
		c.EtcdCA, c.EtcdCert, c.EtcdKey = ca.File, client.Cert, client.Key
	}
	ts := startServer(t, t.TempDir(), secured)
	ctx := testCtx(t, 30*time.Second)
	createTopics(t, ctx, ts.admin(t), 1, nil, "over-tls")
	cl := ts.client(t, kgo.DefaultProduceTopic("over-tls"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce with metadata in a TLS etcd: %v", err)
	}
	ts.close()

	cfg := testConfig(t, t.TempDir())
	secured(&cfg)
	cfg.EtcdCert, cfg.EtcdKey = "", ""
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if srv, err := Start(sctx, cfg, testLogger(t)); err == nil {
		srv.Close()
		t.Fatal("a broker without a client certificate started against an etcd that requires one")
	}
}
