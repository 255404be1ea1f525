package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/meta/etcdstore"
	"github.com/vigilhq/vigil/internal/meta/etcdstore/etcdtest"
	"github.com/vigilhq/vigil/internal/sasl"
	"github.com/vigilhq/vigil/internal/security"
)

// seedUsers writes SCRAM-SHA-512 users straight into a cluster's etcd, as
// `vigil users add --metadata etcd://...` does before any broker runs.
func seedUsers(t *testing.T, endpoint, prefix string, users map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := etcdstore.Open(ctx, etcdstore.Config{Endpoints: []string{endpoint}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	state, err := security.Open(ctx, st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var changes []security.ScramChange
	for u, p := range users {
		cred, err := sasl.NewScramCredential(sasl.ScramSHA512, p, 4096)
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, security.ScramChange{User: u, Mechanism: sasl.ScramSHA512, Credential: &cred})
	}
	if err := state.AlterScram(ctx, changes); err != nil {
		t.Fatal(err)
	}
}

func as(user, pass string) kgo.Opt {
	return kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())
}

// TestClusterSecurity runs three brokers whose only listener is
// SASL_PLAINTEXT, with the acl authorizer, linked to each other over SASL
// as User:broker: ACLs and users changed through one broker are in force
// on the others within a second, and a broker forwarding a zone's request
// authorizes it as the client before sending it on.
func TestClusterSecurity(t *testing.T) {
	endpoint := etcdtest.Start(t)
	objects := filepath.Join(t.TempDir(), "objects")
	const prefix = "/vigil/secure"
	seedUsers(t, endpoint, prefix, map[string]string{"admin": "admin-secret", "broker": "broker-secret", "alice": "alice-secret"})
	brokerPass := filepath.Join(t.TempDir(), "broker.pass")
	if err := os.WriteFile(brokerPass, []byte("broker-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	zones := map[int32]string{1: "a", 2: "b", 3: "c"}
	var brokers []*testServer
	for id := int32(1); id <= 3; id++ {
		brokers = append(brokers, startServer(t, t.TempDir(), func(c *config.Broker) {
			clusterOf(endpoint, objects, id, zones[id])(c)
			c.Metadata = "etcd://" + endpoint + prefix
			c.Listen, c.Advertised = "SASL_PLAINTEXT://127.0.0.1:0", ""
			c.Security.SASLMechanisms = "SCRAM-SHA-512"
			c.Security.Authorizer = "acl"
			c.Security.SuperUsers = "User:admin;User:broker"
			c.Security.InterBrokerUsername, c.Security.InterBrokerPasswordFile = "broker", brokerPass
		}))
	}
	ctx := testCtx(t, 90*time.Second)
	client := func(b *testServer, opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addr), kgo.MetadataMinAge(100 * time.Millisecond),
			kgo.RetryTimeout(10 * time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	admin := kadm.NewClient(client(brokers[0], as("admin", "admin-secret")))
	createTopics(t, ctx, admin, 6, nil, "shared")

	// An ACL added through broker 1 is in every broker's authorizer within
	// a second (each answers DescribeAcls from its own copy).
	start := time.Now()
	acl := kadm.NewACLs().Allow("User:alice").Topics("shared").Operations(kadm.OpWrite, kadm.OpDescribe)
	if res, err := admin.CreateACLs(ctx, acl); err != nil || res[0].Err != nil {
		t.Fatalf("create ACL: %v %v", err, res)
	}
	for _, b := range brokers {
		adm := kadm.NewClient(client(b, as("admin", "admin-secret")))
		for {
			got, err := adm.DescribeACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("shared").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
			if err == nil && len(got) == 1 && len(got[0].Described) == 1 {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("broker %d: the ACL is not there %v after it was created through broker 1 (%v)", b.cfg.NodeID, time.Since(start), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("broker %d has the ACL %v after its creation", b.cfg.NodeID, time.Since(start).Round(time.Millisecond))
	}

	// A user added through broker 1 authenticates on brokers 2 and 3
	// within a second.
	start = time.Now()
	if res, err := admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "bob-secret"}}); err != nil || res.Error() != nil {
		t.Fatalf("add bob: %v %v", err, res.Error())
	}
	for _, b := range brokers[1:] {
		for {
			err := metadataErr(b.addr, as("bob", "bob-secret"))
			if err == nil {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("broker %d: bob cannot authenticate %v after his creation through broker 1: %v", b.cfg.NodeID, time.Since(start), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Zone forwarding over the SASL link: alice, in zone a, writes to
	// every partition through broker 1, which forwards the partitions led
	// in zones b and c.
	zoneA := client(brokers[0], as("alice", "alice-secret"), kgo.ClientID("alice;zone=a"),
		kgo.DefaultProduceTopic("shared"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	before := brokers[0].srv.broker.ZoneBytes().ForwardCross.Load()
	for p := int32(0); p < 6; p++ {
		if err := zoneA.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(fmt.Sprint(p))}).FirstErr(); err != nil {
			t.Fatalf("alice's produce to partition %d through zone a: %v", p, err)
		}
	}
	if brokers[0].srv.broker.ZoneBytes().ForwardCross.Load() == before {
		t.Fatal("nothing was forwarded to zones b and c: the test did not cross the inter-broker link")
	}
	// bob has no ACL: broker 1 refuses him itself, forwarding nothing.
	zoneB := client(brokers[0], as("bob", "bob-secret"), kgo.ClientID("bob;zone=a"),
		kgo.DefaultProduceTopic("shared"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequestRetries(0))
	before = brokers[0].srv.broker.ZoneBytes().ForwardCross.Load()
	for p := int32(0); p < 6; p++ {
		err := zoneB.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("x")}).FirstErr()
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("bob's produce to partition %d without an ACL: %v", p, err)
		}
	}
	if got := brokers[0].srv.broker.ZoneBytes().ForwardCross.Load(); got != before {
		t.Errorf("%d bytes forwarded for bob, who may not write", got-before)
	}

	// (The peers' only listener is SASL_PLAINTEXT, so alice's forwarded
	// writes went over a link that authenticated as User:broker.)
}
