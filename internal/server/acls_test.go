package server

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestAclsSecurityDisabled: with no authorizer, the ACL APIs answer as a
// Kafka broker without one does: SECURITY_DISABLED, for a describe, for
// each ACL to create and for each filter to delete.
func TestAclsSecurityDisabled(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)

	acl := kadm.NewACLs().Allow("User:detector").Topics("auth-events").Operations(kadm.OpRead)
	created, err := adm.CreateACLs(ctx, acl)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 1 || !errors.Is(created[0].Err, kerr.SecurityDisabled) {
		t.Errorf("create: %+v, want SECURITY_DISABLED", created)
	}
	described, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	if len(described) != 1 || !errors.Is(described[0].Err, kerr.SecurityDisabled) {
		t.Errorf("describe: %+v, want SECURITY_DISABLED", described)
	}
	deleted, err := adm.DeleteACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || !errors.Is(deleted[0].Err, kerr.SecurityDisabled) {
		t.Errorf("delete: %+v, want SECURITY_DISABLED", deleted)
	}
}
