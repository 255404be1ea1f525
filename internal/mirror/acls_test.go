package mirror

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/export/exporttest"
	"github.com/vigilhq/vigil/internal/server/servertest"
)

// TestMirrorACLs: with ACLs on, the source's ACLs of mirrored topics,
// matched groups and transactional ids reach Vigil (prefixed ones too),
// others and cluster ACLs do not, one deleted on the source is deleted on
// Vigil, and one created on Vigil stays.
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
	create(sadm, kadm.NewACLs().Allow("User:reader").Topics("acl.events").Operations(kadm.OpRead, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
	create(sadm, kadm.NewACLs().Allow("User:writer").Topics("acl.").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternPrefixed))
	create(sadm, kadm.NewACLs().Allow("User:reader").Groups("soc-detect").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	create(sadm, kadm.NewACLs().Allow("User:writer").TransactionalIDs("tx-1").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	create(sadm, kadm.NewACLs().Allow("User:other").Topics("other").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	create(sadm, kadm.NewACLs().Allow("User:admin").Clusters().Operations(kadm.OpAlter).ResourcePatternType(kadm.ACLPatternLiteral))
	// One of Vigil's own.
	create(dadm, kadm.NewACLs().Allow("User:local").Topics("acl.events").Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))

	m := startMirror(t, src, dst, `acl\..*`, nil, nil, func(c *CopyConfig) { c.ACLs = true })

	// acls lists Vigil's ACLs as "principal resource:name/pattern op".
	acls := func() []string {
		bs, err := describeACLs(ctx, m.dst)
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
		"User:local TOPIC:acl.events/LITERAL DESCRIBE",
		"User:reader GROUP:soc-detect/LITERAL READ",
		"User:reader TOPIC:acl.events/LITERAL DESCRIBE",
		"User:reader TOPIC:acl.events/LITERAL READ",
		"User:writer TOPIC:acl./PREFIXED WRITE",
		"User:writer TRANSACTIONAL_ID:tx-1/LITERAL WRITE",
	}
	var got []string
	exporttest.Wait(t, 30*time.Second, "the source's ACLs on Vigil", func() bool {
		got = acls()
		return slices.Equal(got, want)
	})

	// Deleted on the source: deleted on Vigil; Vigil's own stays.
	drs, err := sadm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:writer").AllowHosts("*").Topics("acl.").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternPrefixed))
	if err != nil || len(drs) == 0 || drs[0].Err != nil {
		t.Fatalf("delete an ACL on the source: %v %v", err, drs)
	}
	want = slices.DeleteFunc(want, func(s string) bool { return strings.HasPrefix(s, "User:writer TOPIC") })
	exporttest.Wait(t, 30*time.Second, "the deleted ACL gone from Vigil", func() bool {
		got = acls()
		return slices.Equal(got, want)
	})
}
