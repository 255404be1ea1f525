package mirror

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/export/exporttest"
	"github.com/vigilhq/vigil/internal/server/servertest"
)

// TestMirrorACLs: with ACLs on, the source's ACLs of mirrored topics,
// matched groups and transactional ids reach Vigil (prefixed ones too),
// others and cluster ACLs do not, one deleted on the source is deleted on
// Vigil, and one created on Vigil stays. Then the mirror stops, an ACL it
// copied is deleted on the source, and a new mirror deletes it on Vigil
// (what the first one copied is in StateTopic), leaving Vigil's own: one
// with the same binding as the source's, there before the mirror, and
// one another mirror (of another source, into the same Vigil) copied.
func TestMirrorACLs(t *testing.T) {
	c := startKfake(t)
	src := strings.Join(c.ListenAddrs(), ",")
	dst := servertest.Run(t, func(cfg *config.Broker) {
		cfg.Security.Authorizer = "acl"
		cfg.Security.SuperUsers = "User:ANONYMOUS" // the mirror's principal on PLAINTEXT
	}).Addr
	ctx := context.Background()
	fill(t, src, "acl.events", 1, 10, nil)
	sadm, dadm := admin(t, src), admin(t, dst)
	create := func(adm *kadm.Client, b *kadm.ACLBuilder) {
		t.Helper()
		rs, err := adm.CreateACLs(ctx, b)
		if err == nil {
			for _, r := range rs {
				if r.Err != nil {
					err = r.Err
				}
			}
		}
		if err != nil {
			t.Fatalf("create ACLs: %v", err)
		}
	}
	del := func(adm *kadm.Client, b *kadm.ACLBuilder) {
		t.Helper()
		drs, err := adm.DeleteACLs(ctx, b.AllowHosts("*"))
		if err != nil || len(drs) == 0 || drs[0].Err != nil || len(drs[0].Deleted) == 0 {
			t.Fatalf("delete an ACL on the source: %v %v", err, drs)
		}
	}
	readEvents := kadm.NewACLs().Allow("User:reader").Topics("acl.events").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	writeTx := kadm.NewACLs().Allow("User:writer").TransactionalIDs("tx-1").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)
	create(sadm, kadm.NewACLs().Allow("User:reader").Topics("acl.events").Operations(kadm.OpRead, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
	create(sadm, kadm.NewACLs().Allow("User:writer").Topics("acl.").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternPrefixed))
	create(sadm, kadm.NewACLs().Allow("User:reader").Groups("soc-detect").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	create(sadm, writeTx)
	create(sadm, kadm.NewACLs().Allow("User:other").Topics("other").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	create(sadm, kadm.NewACLs().Allow("User:admin").Clusters().Operations(kadm.OpAlter).ResourcePatternType(kadm.ACLPatternLiteral))
	// Vigil's own: one of its own, and one the source has too.
	create(dadm, kadm.NewACLs().Allow("User:local").Topics("acl.events").Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
	create(dadm, readEvents)

	// Another source, another mirror into the same Vigil.
	other, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("other-cluster"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	oadm := admin(t, strings.Join(other.ListenAddrs(), ","))
	create(oadm, kadm.NewACLs().Allow("User:b").Topics("acl.b").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))

	withACLs := func(c *CopyConfig) { c.ACLs = true }
	_, stop := runMirror(t, src, dst, `acl\..*`, nil, nil, withACLs)
	_, stopOther := runMirror(t, strings.Join(other.ListenAddrs(), ","), dst, `acl\.b`, nil, nil, withACLs)

	// acls lists Vigil's ACLs as "principal resource:name/pattern op".
	dcl, err := kgo.NewClient(kgo.SeedBrokers(dst))
	if err != nil {
		t.Fatal(err)
	}
	defer dcl.Close()
	acls := func() []string {
		bs, err := describeACLs(ctx, dcl)
		if err != nil {
			return nil
		}
		var out []string
		for _, b := range bs {
			out = append(out, fmt.Sprintf("%s %s:%s/%s %s", b.principal, b.resourceType, b.name, b.pattern, b.operation))
		}
		slices.Sort(out)
		return out
	}
	want := []string{
		"User:b TOPIC:acl.b/LITERAL READ",
		"User:local TOPIC:acl.events/LITERAL DESCRIBE",
		"User:reader GROUP:soc-detect/LITERAL READ",
		"User:reader TOPIC:acl.events/LITERAL DESCRIBE",
		"User:reader TOPIC:acl.events/LITERAL READ",
		"User:writer TOPIC:acl./PREFIXED WRITE",
		"User:writer TRANSACTIONAL_ID:tx-1/LITERAL WRITE",
	}
	wait := func(what string) {
		t.Helper()
		waitList(t, what, "Vigil's ACLs", acls, want)
	}
	wait("the sources' ACLs on Vigil")

	// Deleted on the source: deleted on Vigil; Vigil's own stays.
	del(sadm, kadm.NewACLs().Allow("User:writer").Topics("acl.").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternPrefixed))
	want = slices.DeleteFunc(want, func(s string) bool { return strings.HasPrefix(s, "User:writer TOPIC") })
	wait("the deleted ACL gone from Vigil")

	// Deleted on the source while the mirrors are stopped: a new mirror
	// deletes the one the first copied, not the one that was Vigil's own,
	// nor the other mirror's.
	stop()
	stopOther()
	del(sadm, writeTx)
	del(sadm, readEvents)
	// A record of an ACL never created (a mirror that crashed between
	// recording and creating it, deleted on the source since): harmless.
	state, err := newStateStore([]kgo.Opt{kgo.SeedBrokers(dst)})
	if err != nil {
		t.Fatal(err)
	}
	defer state.close()
	const source = "kfake" // the source's cluster id, kfake's default
	ghost := aclBinding{resourceType: kmsg.ACLResourceTypeTopic, name: "acl.ghost", pattern: kmsg.ACLResourcePatternTypeLiteral,
		principal: "User:ghost", host: "*", operation: kmsg.ACLOperationRead, permission: kmsg.ACLPermissionTypeAllow}
	if err := state.put(ctx, []stateEntry{{key: aclStateKey(source, ghost)}}); err != nil {
		t.Fatal(err)
	}
	runMirror(t, src, dst, `acl\..*`, nil, nil, withACLs)
	want = slices.DeleteFunc(want, func(s string) bool { return strings.HasPrefix(s, "User:writer TRANSACTIONAL_ID") })
	wait("the ACL deleted while the mirror was stopped gone from Vigil")

	// What the state holds now: the two ACLs the mirror copied and the
	// source still has; neither Vigil's own nor the deleted ones.
	state.source = source
	var copied []string
	defer func() {
		if t.Failed() {
			t.Logf("%s holds %q", StateTopic, copied)
		}
	}()
	exporttest.Wait(t, 10*time.Second, "the deleted ACLs forgotten in "+StateTopic, func() bool {
		st, err := state.load(ctx)
		if err != nil {
			t.Logf("read %s: %v", StateTopic, err)
			return false
		}
		copied = copied[:0]
		for b := range st.acls {
			copied = append(copied, fmt.Sprintf("%s %s:%s/%s %s", b.principal, b.resourceType, b.name, b.pattern, b.operation))
		}
		slices.Sort(copied)
		return slices.Equal(copied, []string{
			"User:reader GROUP:soc-detect/LITERAL READ",
			"User:reader TOPIC:acl.events/LITERAL DESCRIBE",
		})
	})

	// The state is a compacted topic on Vigil.
	rcs, err := dadm.DescribeTopicConfigs(ctx, StateTopic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(StateTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "compact" {
		t.Errorf("%s: cleanup.policy %q, want compact", StateTopic, policy)
	}
}

// waitList waits until list returns want (sorted lines), and shows both
// if it never does.
func waitList(t *testing.T, what, name string, list func() []string, want []string) {
	t.Helper()
	var got []string
	defer func() {
		if t.Failed() {
			t.Logf("%s: %q\nwant %q", name, got, want)
		}
	}()
	exporttest.Wait(t, 30*time.Second, what, func() bool {
		got = list()
		return slices.Equal(got, want)
	})
}
