package mirror

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// aclBinding is one ACL: a resource pattern and an entry.
type aclBinding struct {
	resourceType kmsg.ACLResourceType
	name         string
	pattern      kmsg.ACLResourcePatternType
	principal    string
	host         string
	operation    kmsg.ACLOperation
	permission   kmsg.ACLPermissionType
}

func (b aclBinding) String() string {
	return fmt.Sprintf("%s %s %s:%s %s %s from %s", b.permission, b.principal, b.resourceType, b.name, b.pattern, b.operation, b.host)
}

// syncACLs copies, with CopyConfig.ACLs, the source's ACLs of what the
// mirror moves: topics (literal ones --topics matches or "*", every
// prefixed one), groups (literal ones --groups matches or "*", every
// prefixed one) and transactional ids, so that consumers and producers
// keep their rights at cutover. Cluster ACLs are not copied: they grant
// cluster-wide rights (creating topics, altering ACLs) an operator
// grants on purpose. Principals are copied as they are: Vigil's users
// are its own (vigil users add), created under the same names.
//
// An ACL the mirror copied (recorded in StateTopic, by this run or an
// earlier one) is deleted on Vigil once the source no longer has it.
// Every other ACL on Vigil is Vigil's own and never touched, including
// one with the same binding as the source's that was there before the
// mirror would have created it: the mirror did not create it, so it
// does not delete it. Narrowing --topics or --groups deletes nothing:
// only an ACL gone from the source is.
func (m *Mirror) syncACLs(ctx context.Context) {
	if !m.cfg.ACLs {
		return
	}
	src, err := describeACLs(ctx, m.src)
	if errors.Is(err, kerr.SecurityDisabled) {
		// A source without an authorizer has no ACLs to copy, and says
		// nothing of those copied before: nothing is deleted either.
		return
	}
	if err != nil {
		m.log.Warn("mirror: source ACLs not described", "err", err)
		m.metrics.error("acls")
		return
	}
	onSource, want := map[aclBinding]bool{}, map[aclBinding]bool{}
	for _, b := range src {
		onSource[b] = true
		if m.copiesACL(b) {
			want[b] = true
		}
	}
	dst, err := describeACLs(ctx, m.dst)
	if err != nil {
		m.log.Warn("mirror: destination ACLs not described", "err", err)
		m.metrics.error("acls")
		return
	}
	have := map[aclBinding]bool{}
	for _, b := range dst {
		have[b] = true
	}
	var create, drop, forget []aclBinding
	var record, tombstone []stateEntry
	for _, b := range slices.SortedFunc(maps.Keys(want), compareACL) {
		if have[b] {
			continue // copied already, or Vigil's own
		}
		create = append(create, b)
		if !m.aclsCopied[b] {
			record = append(record, stateEntry{key: aclStateKey(m.sourceName, b)})
		}
	}
	for _, b := range slices.SortedFunc(maps.Keys(m.aclsCopied), compareACL) {
		if onSource[b] {
			continue
		}
		if have[b] {
			drop = append(drop, b)
		}
		forget = append(forget, b)
		tombstone = append(tombstone, stateEntry{key: aclStateKey(m.sourceName, b), gone: true})
	}
	// Recorded before created, forgotten after deleted (state.go).
	if err := m.state.put(ctx, record); err != nil {
		m.log.Warn("mirror: ACLs not created: not recorded", "acls", len(create), "err", err)
		m.metrics.error("acls")
		return
	}
	for _, b := range create {
		m.aclsCopied[b] = true
	}
	if err := createACLs(ctx, m.dst, create); err != nil {
		m.log.Warn("mirror: ACLs not created", "acls", len(create), "err", err)
		m.metrics.error("acls")
		return
	}
	for _, b := range create {
		m.log.Info("mirror: ACL copied", "acl", b.String())
	}
	if err := deleteACLs(ctx, m.dst, drop); err != nil {
		m.log.Warn("mirror: ACLs not deleted", "acls", len(drop), "err", err)
		m.metrics.error("acls")
		return
	}
	for _, b := range drop {
		m.log.Info("mirror: ACL deleted as on the source", "acl", b.String())
	}
	if err := m.state.put(ctx, tombstone); err != nil {
		m.log.Warn("mirror: deleted ACLs not forgotten", "acls", len(forget), "err", err)
		m.metrics.error("acls")
		return
	}
	for _, b := range forget {
		delete(m.aclsCopied, b)
	}
}

// copiesACL reports whether the mirror copies an ACL of the source.
func (m *Mirror) copiesACL(b aclBinding) bool {
	literal := b.pattern == kmsg.ACLResourcePatternTypeLiteral
	switch b.resourceType {
	case kmsg.ACLResourceTypeTopic:
		return !literal || b.name == "*" || m.cfg.Topics.MatchString(b.name)
	case kmsg.ACLResourceTypeGroup:
		return !literal || b.name == "*" || m.cfg.Groups == nil || m.cfg.Groups.MatchString(b.name)
	case kmsg.ACLResourceTypeTransactionalId:
		return true
	}
	return false
}

func compareACL(a, b aclBinding) int { return strings.Compare(a.String(), b.String()) }

// describeACLs lists every ACL of a cluster.
func describeACLs(ctx context.Context, cl *kgo.Client) ([]aclBinding, error) {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType = kmsg.ACLResourceTypeAny
	req.ResourcePatternType = kmsg.ACLResourcePatternTypeAny
	req.Operation = kmsg.ACLOperationAny
	req.PermissionType = kmsg.ACLPermissionTypeAny
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("%w%s", err, errMessage(resp.ErrorMessage))
	}
	var out []aclBinding
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			out = append(out, aclBinding{resourceType: r.ResourceType, name: r.ResourceName, pattern: r.ResourcePatternType,
				principal: a.Principal, host: a.Host, operation: a.Operation, permission: a.PermissionType})
		}
	}
	return out, nil
}

func createACLs(ctx context.Context, cl *kgo.Client, bs []aclBinding) error {
	if len(bs) == 0 {
		return nil
	}
	req := kmsg.NewPtrCreateACLsRequest()
	for _, b := range bs {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = b.resourceType, b.name, b.pattern
		c.Principal, c.Host, c.Operation, c.PermissionType = b.principal, b.host, b.operation, b.permission
		req.Creations = append(req.Creations, c)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for i, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil && i < len(bs) {
			return fmt.Errorf("create %s: %w%s", bs[i], err, errMessage(r.ErrorMessage))
		}
	}
	return nil
}

func deleteACLs(ctx context.Context, cl *kgo.Client, bs []aclBinding) error {
	if len(bs) == 0 {
		return nil
	}
	req := kmsg.NewPtrDeleteACLsRequest()
	for _, b := range bs {
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourceName, f.ResourcePatternType = b.resourceType, kmsg.StringPtr(b.name), b.pattern
		f.Principal, f.Host, f.Operation, f.PermissionType = kmsg.StringPtr(b.principal), kmsg.StringPtr(b.host), b.operation, b.permission
		req.Filters = append(req.Filters, f)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for i, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil && i < len(bs) {
			return fmt.Errorf("delete %s: %w%s", bs[i], err, errMessage(r.ErrorMessage))
		}
	}
	return nil
}

func errMessage(m *string) string {
	if m == nil || *m == "" {
		return ""
	}
	return ": " + *m
}
