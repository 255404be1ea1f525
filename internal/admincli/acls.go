package admincli

// vigil acls: CreateAcls, DescribeAcls and DeleteAcls through kadm, with
// kafka-acls.sh's options, so operators need not learn a second
// vocabulary. Its rules, kept here:
//
//   - The resources are every --topic, --group and --transactional-id
//     given, with --resource-pattern-type (default literal), and
//     --cluster (always the literal kafka-cluster).
//   - add: every --allow-principal with every --allow-host (default *)
//     and every --operation (default All) on every resource, ALLOW; the
//     same for --deny-principal and --deny-host, DENY. An operation a
//     resource type does not have (Read on the cluster) is refused, as
//     kafka-acls.sh refuses it.
//   - --producer: Write, Describe and Create on the topics; Write and
//     Describe on the transactional ids; with --idempotent also
//     IdempotentWrite on the cluster. --consumer: Read and Describe on the
//     topics, Read on the groups. They need --topic (and --consumer a
//     --group), exclude --operation, --deny-principal and --deny-host, and
//     may be given together.
//   - list: without a resource, every ACL (any pattern type); --principal
//     keeps one principal's.
//
// Deviations from kafka-acls.sh:
//
//   - delete takes what is left out as "any": without --operation it
//     deletes every operation (kafka-acls.sh deletes only ACLs whose
//     operation is All), without --allow-host every host (kafka-acls.sh
//     only "*"), without a principal every principal. It needs no
//     resource, but then asks for --force, since its filter spans every
//     resource; it never prompts.
//   - A resource option the chosen convenience option would ignore
//     (--group with --producer alone) is an error rather than silently
//     dropped.
//   - list also filters by --operation, which kafka-acls.sh ignores.

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const aclsUsage = `Usage:
  vigil acls add (--allow-principal P | --deny-principal P)... RESOURCE... (--operation OP... | --producer | --consumer) [flags]
  vigil acls list [RESOURCE...] [--principal P ...] [--operation OP ...] [flags]
  vigil acls delete [RESOURCE...] [--allow-principal P | --deny-principal P]... [--operation OP ...] [--force] [flags]

ACLs for a broker run with --authorizer acl, in kafka-acls.sh's words:

  vigil acls add --allow-principal User:ingest --producer --topic ocsf. --resource-pattern-type prefixed
  vigil acls add --allow-principal User:detector --consumer --topic ocsf. --group vigil-detect --resource-pattern-type prefixed
  vigil acls add --deny-principal User:guest --operation All --topic audit
  vigil acls list --topic ocsf.dns --resource-pattern-type match
  vigil acls delete --topic audit --deny-principal User:guest

RESOURCE (each repeatable, combinable):
  --topic T  --group G  --transactional-id ID  --cluster
  --resource-pattern-type literal|prefixed   add (default literal); list and delete also match|any;
                                             for every resource but --cluster (always literal)

ACL flags:
  --allow-principal P, --deny-principal P   Type:Name, e.g. User:alice or User:* (repeatable)
  --allow-host H, --deny-host H             the principals' hosts, an IP address or * (default *)
  --operation OP    Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
                    AlterConfigs, IdempotentWrite, All (repeatable; case-insensitive; add: default All)
  --producer        Write, Describe, Create on the topics; Write, Describe on the transactional ids
  --idempotent      with --producer: IdempotentWrite on the cluster too
  --consumer        Read, Describe on the topics; Read on the groups
  --principal P     list: only the ACLs of P
  --force           delete: go ahead when no RESOURCE narrows the filter (every resource)

Fields left out of a list or delete filter match anything.

` + commonUsage

// aclFlags are kafka-acls.sh's options; every subcommand registers the
// ones it takes.
type aclFlags struct {
	allow, deny, allowHosts, denyHosts listFlag
	principals                         listFlag
	operations                         listFlag
	topics, groups, txnIDs             listFlag
	cluster                            bool
	pattern                            string
	producer, consumer, idempotent     bool
	force                              bool
}

func (f *aclFlags) register(fs *flag.FlagSet, sub string) {
	f.operations.split = true
	fs.Var(&f.topics, "topic", "topic `name` (repeatable; * for every topic)")
	fs.Var(&f.groups, "group", "consumer group `name` (repeatable; * for every group)")
	fs.Var(&f.txnIDs, "transactional-id", "transactional `id` (repeatable; * for every id)")
	fs.BoolVar(&f.cluster, "cluster", false, "the cluster resource")
	fs.StringVar(&f.pattern, "resource-pattern-type", "", "literal or prefixed (list and delete: also match or any); default literal")
	fs.Var(&f.operations, "operation", "`operation`: Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All (repeatable)")
	if sub == "list" {
		fs.Var(&f.principals, "principal", "only the ACLs of this `principal` (repeatable)")
		return
	}
	fs.Var(&f.allow, "allow-principal", "`principal` (Type:Name) the ACLs allow (repeatable)")
	fs.Var(&f.deny, "deny-principal", "`principal` (Type:Name) the ACLs deny (repeatable)")
	fs.Var(&f.allowHosts, "allow-host", "`host` of the allowed principals (repeatable; default *)")
	fs.Var(&f.denyHosts, "deny-host", "`host` of the denied principals (repeatable; default *)")
	fs.BoolVar(&f.producer, "producer", false, "the ACLs of a producer: Write, Describe, Create on the topics; Write, Describe on the transactional ids")
	fs.BoolVar(&f.idempotent, "idempotent", false, "with --producer: IdempotentWrite on the cluster too")
	fs.BoolVar(&f.consumer, "consumer", false, "the ACLs of a consumer: Read, Describe on the topics; Read on the groups")
	if sub == "delete" {
		fs.BoolVar(&f.force, "force", false, "delete even when no resource narrows the filter")
	}
}

// aclResource is a resource pattern; in a filter, Pattern may be MATCH or
// ANY and Name empty (any name).
type aclResource struct {
	Type    kmsg.ACLResourceType
	Name    string
	Pattern kmsg.ACLResourcePatternType
}

// aclPlan is what a command line asks for: the operations per resource
// pattern, in the order the resources were given.
type aclPlan struct {
	resources []aclResource
	ops       map[aclResource][]kmsg.ACLOperation
}

func (p *aclPlan) add(r aclResource, ops ...kmsg.ACLOperation) {
	if p.ops == nil {
		p.ops = map[aclResource][]kmsg.ACLOperation{}
	}
	if _, ok := p.ops[r]; !ok {
		p.resources = append(p.resources, r)
	}
	for _, op := range ops {
		if !containsOp(p.ops[r], op) {
			p.ops[r] = append(p.ops[r], op)
		}
	}
	if ops == nil && p.ops[r] == nil {
		p.ops[r] = []kmsg.ACLOperation{}
	}
}

func containsOp(ops []kmsg.ACLOperation, op kmsg.ACLOperation) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// supportedOps are the operations of each resource type, as Kafka's
// AclEntry.supportedOperations lists them (All aside).
var supportedOps = map[kmsg.ACLResourceType][]kmsg.ACLOperation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
		kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeTransactionalId: {kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite},
}

// parseOps reads --operation: Kafka's operation names, in any case, with
// or without underscores (ClusterAction, CLUSTER_ACTION).
func parseOps(vals []string) ([]kmsg.ACLOperation, error) {
	var ops []kmsg.ACLOperation
	for _, v := range vals {
		op, err := kmsg.ParseACLOperation(v)
		if err != nil || op < kmsg.ACLOperationAll || op > kmsg.ACLOperationIdempotentWrite {
			return nil, usagef("--operation %q: want Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All", v)
		}
		if !containsOp(ops, op) {
			ops = append(ops, op)
		}
	}
	return ops, nil
}

// patternType reads --resource-pattern-type; filters may also MATCH or
// ANY. Unset is "" for the caller to default.
func (f *aclFlags) patternType(filter bool) (kmsg.ACLResourcePatternType, error) {
	if f.pattern == "" {
		return kmsg.ACLResourcePatternTypeUnknown, nil
	}
	p, err := kmsg.ParseACLResourcePatternType(f.pattern)
	switch {
	case err != nil:
	case p == kmsg.ACLResourcePatternTypeLiteral || p == kmsg.ACLResourcePatternTypePrefixed:
		return p, nil
	case filter:
		return p, nil
	default:
		return 0, usagef("--resource-pattern-type %s: an ACL is literal or prefixed (match and any are for list and delete)", f.pattern)
	}
	if filter {
		return 0, usagef("--resource-pattern-type %q: want literal, prefixed, match or any", f.pattern)
	}
	return 0, usagef("--resource-pattern-type %q: want literal or prefixed", f.pattern)
}

func (f *aclFlags) hasResource() bool {
	return len(f.topics.vals)+len(f.groups.vals)+len(f.txnIDs.vals) > 0 || f.cluster
}

// resources are the resource patterns the flags name, with pattern p (the
// cluster is always literal).
func (f *aclFlags) resources(p kmsg.ACLResourcePatternType) []aclResource {
	var out []aclResource
	for _, t := range dedupe(f.topics.vals) {
		out = append(out, aclResource{kmsg.ACLResourceTypeTopic, t, p})
	}
	for _, g := range dedupe(f.groups.vals) {
		out = append(out, aclResource{kmsg.ACLResourceTypeGroup, g, p})
	}
	for _, x := range dedupe(f.txnIDs.vals) {
		out = append(out, aclResource{kmsg.ACLResourceTypeTransactionalId, x, p})
	}
	if f.cluster {
		out = append(out, aclResource{kmsg.ACLResourceTypeCluster, clusterName, kmsg.ACLResourcePatternTypeLiteral})
	}
	return out
}

// clusterName is the one name of Kafka's cluster resource.
const clusterName = "kafka-cluster"

func checkPrincipals(flagName string, ps []string) error {
	for _, p := range ps {
		typ, name, ok := strings.Cut(p, ":")
		if !ok || strings.TrimSpace(typ) == "" || name == "" {
			return usagef("--%s %q: want Type:Name, e.g. User:alice", flagName, p)
		}
	}
	return nil
}

// plan turns add's or delete's flags into operations per resource, with
// kafka-acls.sh's rules (see the file comment). For delete, no
// --operation means any (nil operations).
func (f *aclFlags) plan(sub string) (aclPlan, error) {
	var plan aclPlan
	if err := checkPrincipals("allow-principal", f.allow.vals); err != nil {
		return plan, err
	}
	if err := checkPrincipals("deny-principal", f.deny.vals); err != nil {
		return plan, err
	}
	if len(f.allowHosts.vals) > 0 && len(f.allow.vals) == 0 {
		return plan, usagef("--allow-host goes with --allow-principal")
	}
	if len(f.denyHosts.vals) > 0 && len(f.deny.vals) == 0 {
		return plan, usagef("--deny-host goes with --deny-principal")
	}
	pattern, err := f.patternType(sub == "delete")
	if err != nil {
		return plan, err
	}
	if pattern == kmsg.ACLResourcePatternTypeUnknown {
		pattern = kmsg.ACLResourcePatternTypeLiteral
		if sub == "delete" && !f.hasResource() {
			pattern = kmsg.ACLResourcePatternTypeAny
		}
	}
	ops, err := parseOps(f.operations.vals)
	if err != nil {
		return plan, err
	}
	if f.idempotent && !f.producer {
		return plan, usagef("--idempotent goes with --producer")
	}
	if !f.producer && !f.consumer {
		if sub == "add" && len(ops) == 0 {
			ops = []kmsg.ACLOperation{kmsg.ACLOperationAll}
		}
		for _, r := range f.resources(pattern) {
			plan.add(r, ops...)
		}
		return plan, f.checkOps(plan)
	}

	// --producer, --consumer.
	switch {
	case len(f.operations.vals) > 0:
		return plan, usagef("--producer and --consumer choose the operations: leave out --operation")
	case len(f.deny.vals) > 0:
		return plan, usagef("--producer and --consumer make ALLOW ACLs: leave out --deny-principal")
	case len(f.topics.vals) == 0:
		return plan, usagef("--producer and --consumer need a --topic")
	case f.consumer && len(f.groups.vals) == 0:
		return plan, usagef("--consumer needs a --group")
	case !f.producer && (f.cluster || len(f.txnIDs.vals) > 0):
		return plan, usagef("--consumer applies to --topic and --group; --cluster and --transactional-id go with --producer")
	case !f.consumer && len(f.groups.vals) > 0:
		return plan, usagef("--producer applies to --topic and --transactional-id; --group goes with --consumer")
	case f.cluster:
		return plan, usagef("--producer gives the cluster IdempotentWrite with --idempotent; leave out --cluster")
	}
	for _, r := range f.resources(pattern) {
		switch {
		case r.Type == kmsg.ACLResourceTypeTopic && f.producer:
			plan.add(r, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe, kmsg.ACLOperationCreate)
		case r.Type == kmsg.ACLResourceTypeTransactionalId:
			plan.add(r, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe)
		}
		switch {
		case r.Type == kmsg.ACLResourceTypeTopic && f.consumer:
			plan.add(r, kmsg.ACLOperationRead, kmsg.ACLOperationDescribe)
		case r.Type == kmsg.ACLResourceTypeGroup:
			plan.add(r, kmsg.ACLOperationRead)
		}
	}
	if f.idempotent {
		plan.add(aclResource{kmsg.ACLResourceTypeCluster, clusterName, kmsg.ACLResourcePatternTypeLiteral}, kmsg.ACLOperationIdempotentWrite)
	}
	return plan, nil
}

// checkOps refuses an operation a resource type does not have, as
// kafka-acls.sh does.
func (f *aclFlags) checkOps(plan aclPlan) error {
	for _, r := range plan.resources {
		for _, op := range plan.ops[r] {
			if op != kmsg.ACLOperationAll && !containsOp(supportedOps[r.Type], op) {
				var names []string
				for _, o := range supportedOps[r.Type] {
					names = append(names, o.String())
				}
				return usagef("--operation %s does not apply to a %s; it has %s and ALL", op, r.Type, strings.Join(names, ", "))
			}
		}
	}
	return nil
}

// builders groups the plan's resources by pattern type and operations
// into kadm builders, one request each.
func (f *aclFlags) builders(plan aclPlan, filter bool) []*kadm.ACLBuilder {
	type key struct {
		pattern kmsg.ACLResourcePatternType
		ops     string
	}
	var order []key
	groups := map[key][]aclResource{}
	for _, r := range plan.resources {
		var names []string
		for _, op := range plan.ops[r] {
			names = append(names, op.String())
		}
		k := key{r.Pattern, strings.Join(names, ",")}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []*kadm.ACLBuilder
	for _, k := range order {
		rs := groups[k]
		b := kadm.NewACLs().ResourcePatternType(k.pattern).Operations(plan.ops[rs[0]]...)
		var topics, groupNames, txns []string
		for _, r := range rs {
			switch r.Type {
			case kmsg.ACLResourceTypeTopic:
				topics = append(topics, r.Name)
			case kmsg.ACLResourceTypeGroup:
				groupNames = append(groupNames, r.Name)
			case kmsg.ACLResourceTypeTransactionalId:
				txns = append(txns, r.Name)
			case kmsg.ACLResourceTypeCluster:
				b.Clusters()
			}
		}
		b.MaybeTopics(topics...).MaybeGroups(groupNames...).MaybeTransactionalIDs(txns...)
		f.principalsOn(b, filter)
		out = append(out, b)
	}
	return out
}

// principalsOn sets the entries: for creating, the principals with their
// hosts (default *); for a filter, left-out hosts match any host and
// left-out principals any principal.
func (f *aclFlags) principalsOn(b *kadm.ACLBuilder, filter bool) {
	allow, deny := dedupe(f.allow.vals), dedupe(f.deny.vals)
	b.MaybeAllow(allow...).MaybeAllowHosts(dedupe(f.allowHosts.vals)...)
	b.MaybeDeny(deny...).MaybeDenyHosts(dedupe(f.denyHosts.vals)...)
	if !filter {
		return
	}
	switch {
	case len(allow) == 0 && len(deny) == 0:
		b.Allow().AllowHosts().Deny().DenyHosts()
	default:
		if len(allow) > 0 && len(f.allowHosts.vals) == 0 {
			b.AllowHosts()
		}
		if len(deny) > 0 && len(f.denyHosts.vals) == 0 {
			b.DenyHosts()
		}
	}
}

func aclCommands() map[string]subcommand {
	return map[string]subcommand{
		"add": {args: "(--allow-principal P | --deny-principal P)... RESOURCE... (--operation OP... | --producer | --consumer)", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			var f aclFlags
			f.register(fs, "add")
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.pos) > 0 {
					return usagef("unexpected argument %q", inv.pos[0])
				}
				if len(f.allow.vals)+len(f.deny.vals) == 0 {
					return usagef("name who the ACLs are for: --allow-principal or --deny-principal")
				}
				if !f.hasResource() {
					return usagef("name at least one resource: --topic, --group, --transactional-id or --cluster")
				}
				plan, err := f.plan("add")
				if err != nil {
					return err
				}
				return inv.admin(func(adm *kadm.Client) error {
					return createACLs(ctx, adm, inv.out, f.builders(plan, false))
				})
			}
		}},
		"list": {args: "[RESOURCE...] [--principal P ...] [--operation OP ...]", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			var f aclFlags
			f.register(fs, "list")
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.pos) > 0 {
					return usagef("unexpected argument %q", inv.pos[0])
				}
				b, err := f.listFilter()
				if err != nil {
					return err
				}
				return inv.admin(func(adm *kadm.Client) error {
					return listACLs(ctx, adm, inv.out, b)
				})
			}
		}},
		"delete": {args: "[RESOURCE...] [--allow-principal P | --deny-principal P]... [--operation OP ...] [--force]", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			var f aclFlags
			f.register(fs, "delete")
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.pos) > 0 {
					return usagef("unexpected argument %q", inv.pos[0])
				}
				if !f.hasResource() && !f.force {
					return usagef("no --topic, --group, --transactional-id or --cluster: the filter spans every resource; give --force to delete on all of them")
				}
				plan, err := f.plan("delete")
				if err != nil {
					return err
				}
				var bs []*kadm.ACLBuilder
				if f.hasResource() {
					bs = f.builders(plan, true)
				} else {
					ops, _ := parseOps(f.operations.vals)
					b := kadm.NewACLs().AnyResource().ResourcePatternType(kmsg.ACLResourcePatternTypeAny).Operations(ops...)
					if p, _ := f.patternType(true); p != kmsg.ACLResourcePatternTypeUnknown {
						b.ResourcePatternType(p)
					}
					f.principalsOn(b, true)
					bs = []*kadm.ACLBuilder{b}
				}
				return inv.admin(func(adm *kadm.Client) error {
					return deleteACLs(ctx, adm, inv.out, bs)
				})
			}
		}},
	}
}

// listFilter is list's one builder: the named resources (every one when
// none is named, of any pattern type), the principals, the operations.
func (f *aclFlags) listFilter() (*kadm.ACLBuilder, error) {
	if err := checkPrincipals("principal", f.principals.vals); err != nil {
		return nil, err
	}
	pattern, err := f.patternType(true)
	if err != nil {
		return nil, err
	}
	ops, err := parseOps(f.operations.vals)
	if err != nil {
		return nil, err
	}
	b := kadm.NewACLs().Operations(ops...)
	if !f.hasResource() {
		if pattern == kmsg.ACLResourcePatternTypeUnknown {
			pattern = kmsg.ACLResourcePatternTypeAny
		}
		b.AnyResource()
	} else {
		b.MaybeTopics(dedupe(f.topics.vals)...).MaybeGroups(dedupe(f.groups.vals)...).
			MaybeTransactionalIDs(dedupe(f.txnIDs.vals)...).MaybeClusters(f.cluster)
	}
	b.ResourcePatternType(pattern)
	if ps := dedupe(f.principals.vals); len(ps) > 0 {
		b.Allow(ps...).AllowHosts().Deny(ps...).DenyHosts()
	} else {
		b.Allow().AllowHosts().Deny().DenyHosts()
	}
	return b, nil
}

// aclRow is one ACL binding in the output.
type aclRow struct {
	ResourceType string   `json:"resource_type"`
	Name         string   `json:"name"`
	Pattern      string   `json:"pattern"`
	Principal    string   `json:"principal"`
	Host         string   `json:"host"`
	Operation    string   `json:"operation"`
	Permission   string   `json:"permission"`
	OK           *bool    `json:"ok,omitempty"` // add and delete
	Error        *jsonErr `json:"error,omitempty"`
}

func (r aclRow) cells() []string {
	return []string{r.ResourceType, r.Name, r.Pattern, r.Principal, r.Host, r.Operation, r.Permission}
}

var aclHeader = []string{"RESOURCE-TYPE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"}

func newACLRow(t kmsg.ACLResourceType, name string, p kmsg.ACLResourcePatternType, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) aclRow {
	return aclRow{ResourceType: t.String(), Name: name, Pattern: p.String(), Principal: principal, Host: host, Operation: op.String(), Permission: perm.String()}
}

func sortACLRows(rows []aclRow) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i].cells(), rows[j].cells()
		for k := range a {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return false
	})
}

func createACLs(ctx context.Context, adm *kadm.Client, out *printer, bs []*kadm.ACLBuilder) error {
	var rows []aclRow
	for _, b := range bs {
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			return fmt.Errorf("create ACLs: %w", err)
		}
		for _, r := range res {
			row := newACLRow(r.Type, r.Name, r.Pattern, r.Principal, r.Host, r.Operation, r.Permission)
			row.Error = newJSONErr(r.Err, r.ErrMessage)
			row.OK = ptr(row.Error == nil)
			rows = append(rows, row)
		}
	}
	return reportACLs(out, rows, "created", "could not be created")
}

func deleteACLs(ctx context.Context, adm *kadm.Client, out *printer, bs []*kadm.ACLBuilder) error {
	var rows []aclRow
	var filterErrs []string
	for _, b := range bs {
		res, err := adm.DeleteACLs(ctx, b)
		if err != nil {
			return fmt.Errorf("delete ACLs: %w", err)
		}
		for _, r := range res {
			if r.Err != nil {
				filterErrs = append(filterErrs, errText(r.Err, r.ErrMessage))
				continue
			}
			for _, d := range r.Deleted {
				row := newACLRow(d.Type, d.Name, d.Pattern, d.Principal, d.Host, d.Operation, d.Permission)
				row.Error = newJSONErr(d.Err, d.ErrMessage)
				row.OK = ptr(row.Error == nil)
				rows = append(rows, row)
			}
		}
	}
	if len(rows) == 0 && len(filterErrs) == 0 && !out.json {
		return out.line("no ACL matched: nothing deleted")
	}
	if len(rows) > 0 || out.json {
		if err := reportACLs(out, rows, "deleted", "could not be deleted"); err != nil {
			return err
		}
	}
	if len(filterErrs) > 0 {
		return failedf("delete ACLs: %s", strings.Join(dedupe(filterErrs), "; "))
	}
	return nil
}

func listACLs(ctx context.Context, adm *kadm.Client, out *printer, b *kadm.ACLBuilder) error {
	res, err := adm.DescribeACLs(ctx, b)
	if err != nil {
		return fmt.Errorf("describe ACLs: %w", err)
	}
	var rows []aclRow
	var errs []string
	seen := map[aclRow]bool{}
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, errText(r.Err, r.ErrMessage))
			continue
		}
		for _, d := range r.Described {
			row := newACLRow(d.Type, d.Name, d.Pattern, d.Principal, d.Host, d.Operation, d.Permission)
			if !seen[row] {
				seen[row] = true
				rows = append(rows, row)
			}
		}
	}
	if len(errs) > 0 {
		return failedf("describe ACLs: %s", strings.Join(dedupe(errs), "; "))
	}
	sortACLRows(rows)
	if out.json {
		if rows == nil {
			rows = []aclRow{}
		}
		return out.encode(rows)
	}
	cells := make([][]string, 0, len(rows))
	for _, r := range rows {
		cells = append(cells, r.cells())
	}
	return out.table(aclHeader, cells)
}

func reportACLs(out *printer, rows []aclRow, okText, failText string) error {
	sortACLRows(rows)
	failed := 0
	for _, r := range rows {
		if r.Error != nil {
			failed++
		}
	}
	if out.json {
		if rows == nil {
			rows = []aclRow{}
		}
		if err := out.encode(rows); err != nil {
			return err
		}
	} else {
		cells := make([][]string, 0, len(rows))
		for _, r := range rows {
			cells = append(cells, append(r.cells(), resultText(r.Error == nil, r.Error, okText)))
		}
		if err := out.table(append(aclHeader[:len(aclHeader):len(aclHeader)], "RESULT"), cells); err != nil {
			return err
		}
	}
	if failed > 0 {
		return failedf("%s of %d %s", plural(failed, "ACL", "ACLs"), len(rows), failText)
	}
	return nil
}
