package admincli_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/admincli"
	"github.com/vigilhq/vigil/internal/config"
)

// bindingsOf asks the broker itself (DescribeAcls, as its super user) for
// every ACL of principal, as "TYPE NAME PATTERN HOST OPERATION PERMISSION".
func (sb *securedBroker) bindingsOf(t *testing.T, principal string) []string {
	t.Helper()
	adm := kadm.NewClient(scramClient(t, sb.addr(config.SASLPlaintext), adminUser, adminPassword))
	b := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations().
		Allow(principal).AllowHosts().Deny(principal).DenyHosts()
	res, err := adm.DescribeACLs(testCtx(t), b)
	if err != nil {
		t.Fatalf("describe ACLs of %s: %v", principal, err)
	}
	var out []string
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("describe ACLs of %s: %v", principal, r.Err)
		}
		for _, d := range r.Described {
			out = append(out, strings.Join([]string{d.Type.String(), d.Name, d.Pattern.String(), d.Host, d.Operation.String(), d.Permission.String()}, " "))
		}
	}
	sort.Strings(out)
	return out
}

func wantBindings(t *testing.T, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("bindings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

type aclJSON struct {
	ResourceType string   `json:"resource_type"`
	Name         string   `json:"name"`
	Pattern      string   `json:"pattern"`
	Principal    string   `json:"principal"`
	Host         string   `json:"host"`
	Operation    string   `json:"operation"`
	Permission   string   `json:"permission"`
	OK           *bool    `json:"ok"`
	Error        *jsonErr `json:"error"`
}

func TestACLs(t *testing.T) {
	sb := startSecuredBroker(t)
	admin := sb.adminEnv()
	acls := func(t *testing.T, args ...string) result {
		t.Helper()
		return run(t, admin, "", append([]string{"acls"}, args...)...)
	}

	t.Run("add", func(t *testing.T) {
		r := acls(t, "add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "describe", "--topic", "orders", "--topic", "logs").must(t)
		wantRow(t, r, "RESOURCE-TYPE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION", "RESULT")
		wantRow(t, r, "TOPIC", "orders", "LITERAL", "User:alice", "*", "READ", "ALLOW", "created")
		wantBindings(t, sb.bindingsOf(t, "User:alice"),
			"TOPIC logs LITERAL * DESCRIBE ALLOW", "TOPIC logs LITERAL * READ ALLOW",
			"TOPIC orders LITERAL * DESCRIBE ALLOW", "TOPIC orders LITERAL * READ ALLOW")

		// Default operation All; hosts; deny; prefixed; every resource type.
		acls(t, "add", "--deny-principal", "User:mallory", "--topic", "logs-", "--resource-pattern-type", "prefixed").must(t)
		acls(t, "add", "--allow-principal", "User:ops", "--allow-host", "10.0.0.1", "--allow-host", "10.0.0.2",
			"--operation", "ALTER_CONFIGS,DescribeConfigs", "--cluster", "--topic", "*").must(t)
		// Delete applies to the group, not to the transactional id: nothing
		// is created.
		r = acls(t, "add", "--allow-principal", "User:ops", "--operation", "delete", "--group", "g1", "--transactional-id", "tx-1", "--operation", "describe")
		wantCode(t, r, admincli.ExitUsage)
		wantMatch(t, "stderr", r.stderr, `--operation DELETE does not apply to a TRANSACTIONAL_ID; it has DESCRIBE, WRITE and ALL`)
		wantBindings(t, sb.bindingsOf(t, "User:mallory"), "TOPIC logs- PREFIXED * ALL DENY")
		wantBindings(t, sb.bindingsOf(t, "User:ops"),
			"CLUSTER kafka-cluster LITERAL 10.0.0.1 ALTER_CONFIGS ALLOW", "CLUSTER kafka-cluster LITERAL 10.0.0.1 DESCRIBE_CONFIGS ALLOW",
			"CLUSTER kafka-cluster LITERAL 10.0.0.2 ALTER_CONFIGS ALLOW", "CLUSTER kafka-cluster LITERAL 10.0.0.2 DESCRIBE_CONFIGS ALLOW",
			"TOPIC * LITERAL 10.0.0.1 ALTER_CONFIGS ALLOW", "TOPIC * LITERAL 10.0.0.1 DESCRIBE_CONFIGS ALLOW",
			"TOPIC * LITERAL 10.0.0.2 ALTER_CONFIGS ALLOW", "TOPIC * LITERAL 10.0.0.2 DESCRIBE_CONFIGS ALLOW")
	})

	t.Run("producer and consumer", func(t *testing.T) {
		acls(t, "add", "--producer", "--allow-principal", "User:prod", "--topic", "events", "--transactional-id", "tx-1", "--idempotent").must(t)
		wantBindings(t, sb.bindingsOf(t, "User:prod"),
			"TOPIC events LITERAL * WRITE ALLOW", "TOPIC events LITERAL * DESCRIBE ALLOW", "TOPIC events LITERAL * CREATE ALLOW",
			"TRANSACTIONAL_ID tx-1 LITERAL * WRITE ALLOW", "TRANSACTIONAL_ID tx-1 LITERAL * DESCRIBE ALLOW",
			"CLUSTER kafka-cluster LITERAL * IDEMPOTENT_WRITE ALLOW")
		// Without --idempotent, nothing on the cluster (as kafka-acls.sh).
		acls(t, "add", "--producer", "--allow-principal", "User:prod2", "--topic", "events").must(t)
		wantBindings(t, sb.bindingsOf(t, "User:prod2"),
			"TOPIC events LITERAL * WRITE ALLOW", "TOPIC events LITERAL * DESCRIBE ALLOW", "TOPIC events LITERAL * CREATE ALLOW")

		acls(t, "add", "--consumer", "--allow-principal", "User:cons", "--allow-host", "10.0.0.7", "--topic", "events", "--group", "g1").must(t)
		wantBindings(t, sb.bindingsOf(t, "User:cons"),
			"TOPIC events LITERAL 10.0.0.7 READ ALLOW", "TOPIC events LITERAL 10.0.0.7 DESCRIBE ALLOW", "GROUP g1 LITERAL 10.0.0.7 READ ALLOW")

		// Both at once: the union, Describe once.
		acls(t, "add", "--producer", "--consumer", "--allow-principal", "User:both", "--topic", "t2", "--group", "g2", "--resource-pattern-type", "prefixed").must(t)
		wantBindings(t, sb.bindingsOf(t, "User:both"),
			"TOPIC t2 PREFIXED * WRITE ALLOW", "TOPIC t2 PREFIXED * DESCRIBE ALLOW", "TOPIC t2 PREFIXED * CREATE ALLOW",
			"TOPIC t2 PREFIXED * READ ALLOW", "GROUP g2 PREFIXED * READ ALLOW")
	})

	t.Run("list", func(t *testing.T) {
		r := acls(t, "list").must(t)
		wantRow(t, r, "RESOURCE-TYPE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION")
		wantRow(t, r, "TOPIC", "orders", "LITERAL", "User:alice", "*", "READ", "ALLOW")
		wantRow(t, r, "TOPIC", "logs-", "PREFIXED", "User:mallory", "*", "ALL", "DENY")
		wantRow(t, r, "CLUSTER", "kafka-cluster", "LITERAL", "User:prod", "*", "IDEMPOTENT_WRITE", "ALLOW")

		var rows []aclJSON
		decode(t, acls(t, "list", "--topic", "events", "--json").must(t), &rows)
		if len(rows) != 8 { // prod 3, prod2 3, cons 2
			t.Errorf("list --topic events: %d ACLs, want 8: %+v", len(rows), rows)
		}
		for _, a := range rows {
			if a.ResourceType != "TOPIC" || a.Name != "events" || a.Pattern != "LITERAL" || a.OK != nil {
				t.Errorf("list --topic events gave %+v", a)
			}
		}
		decode(t, acls(t, "list", "--principal", "User:prod", "--json").must(t), &rows)
		if len(rows) != 6 {
			t.Errorf("list --principal User:prod: %d ACLs, want 6: %+v", len(rows), rows)
		}
		// match: every ACL that applies to the topic logs-2024.
		r = acls(t, "list", "--topic", "logs-2024", "--resource-pattern-type", "match").must(t)
		wantRow(t, r, "TOPIC", "logs-", "PREFIXED", "User:mallory", "*", "ALL", "DENY")
		wantRow(t, r, "TOPIC", "*", "LITERAL", "User:ops")
		wantNoRow(t, r, "TOPIC", "logs", "LITERAL")
		decode(t, acls(t, "list", "--operation", "IdempotentWrite", "--json").must(t), &rows)
		if len(rows) != 1 || rows[0].ResourceType != "CLUSTER" || rows[0].Principal != "User:prod" {
			t.Errorf("list --operation IdempotentWrite: %+v", rows)
		}
		decode(t, acls(t, "list", "--topic", "nothing", "--json").must(t), &rows)
		if len(rows) != 0 {
			t.Errorf("list --topic nothing: %+v", rows)
		}
	})

	t.Run("delete", func(t *testing.T) {
		r := acls(t, "delete", "--topic", "orders", "--allow-principal", "User:alice", "--operation", "Read").must(t)
		wantRow(t, r, "TOPIC", "orders", "LITERAL", "User:alice", "*", "READ", "ALLOW", "deleted")
		wantBindings(t, sb.bindingsOf(t, "User:alice"),
			"TOPIC logs LITERAL * DESCRIBE ALLOW", "TOPIC logs LITERAL * READ ALLOW", "TOPIC orders LITERAL * DESCRIBE ALLOW")

		// --producer deletes what --producer added on the resources named.
		acls(t, "delete", "--producer", "--allow-principal", "User:prod", "--topic", "events").must(t)
		wantBindings(t, sb.bindingsOf(t, "User:prod"),
			"TRANSACTIONAL_ID tx-1 LITERAL * WRITE ALLOW", "TRANSACTIONAL_ID tx-1 LITERAL * DESCRIBE ALLOW",
			"CLUSTER kafka-cluster LITERAL * IDEMPOTENT_WRITE ALLOW")

		// No resource: every resource, so --force is asked for.
		r = acls(t, "delete", "--allow-principal", "User:cons")
		wantCode(t, r, admincli.ExitUsage)
		wantMatch(t, "stderr", r.stderr, `spans every resource; give --force`)
		wantBindings(t, sb.bindingsOf(t, "User:cons"),
			"TOPIC events LITERAL 10.0.0.7 READ ALLOW", "TOPIC events LITERAL 10.0.0.7 DESCRIBE ALLOW", "GROUP g1 LITERAL 10.0.0.7 READ ALLOW")
		var rows []aclJSON
		decode(t, acls(t, "delete", "--allow-principal", "User:cons", "--force", "--json").must(t), &rows)
		if len(rows) != 3 || rows[0].OK == nil || !*rows[0].OK {
			t.Errorf("delete --force --json: %+v", rows)
		}
		wantBindings(t, sb.bindingsOf(t, "User:cons"))

		// A host narrows the filter; a deny principal matches only DENY.
		acls(t, "delete", "--topic", "*", "--cluster", "--allow-principal", "User:ops", "--allow-host", "10.0.0.2").must(t)
		wantBindings(t, sb.bindingsOf(t, "User:ops"),
			"CLUSTER kafka-cluster LITERAL 10.0.0.1 ALTER_CONFIGS ALLOW", "CLUSTER kafka-cluster LITERAL 10.0.0.1 DESCRIBE_CONFIGS ALLOW",
			"TOPIC * LITERAL 10.0.0.1 ALTER_CONFIGS ALLOW", "TOPIC * LITERAL 10.0.0.1 DESCRIBE_CONFIGS ALLOW")
		r = acls(t, "delete", "--topic", "logs-", "--resource-pattern-type", "prefixed", "--allow-principal", "User:mallory").must(t)
		wantMatch(t, "stdout", r.stdout, `no ACL matched`)
		acls(t, "delete", "--topic", "logs-2024", "--resource-pattern-type", "match", "--deny-principal", "User:mallory").must(t)
		wantBindings(t, sb.bindingsOf(t, "User:mallory"))
	})

	t.Run("usage", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"add", "--topic", "t", "--operation", "Read"}, "--allow-principal or --deny-principal"},
			{[]string{"add", "--allow-principal", "User:a", "--operation", "Read"}, "at least one resource"},
			{[]string{"add", "--allow-principal", "alice", "--topic", "t"}, `want Type:Name`},
			{[]string{"add", "--allow-principal", "User:a", "--topic", "t", "--operation", "Frobnicate"}, `--operation "Frobnicate"`},
			{[]string{"add", "--allow-principal", "User:a", "--topic", "t", "--operation", "Any"}, `--operation "Any"`},
			{[]string{"add", "--allow-principal", "User:a", "--cluster", "--operation", "Read"}, "READ does not apply to a CLUSTER"},
			{[]string{"add", "--allow-principal", "User:a", "--group", "g", "--operation", "Write"}, "WRITE does not apply to a GROUP"},
			{[]string{"add", "--allow-principal", "User:a", "--topic", "t", "--resource-pattern-type", "match"}, "literal or prefixed"},
			{[]string{"add", "--allow-principal", "User:a", "--topic", "t", "--resource-pattern-type", "glob"}, `"glob": want literal or prefixed`},
			{[]string{"add", "--allow-host", "10.0.0.1", "--deny-principal", "User:a", "--topic", "t"}, "--allow-host goes with --allow-principal"},
			{[]string{"add", "--producer", "--allow-principal", "User:a", "--group", "g"}, "need a --topic"},
			{[]string{"add", "--producer", "--allow-principal", "User:a", "--topic", "t", "--operation", "Read"}, "leave out --operation"},
			{[]string{"add", "--producer", "--deny-principal", "User:a", "--topic", "t"}, "leave out --deny-principal"},
			{[]string{"add", "--producer", "--allow-principal", "User:a", "--topic", "t", "--group", "g"}, "--group goes with --consumer"},
			{[]string{"add", "--consumer", "--allow-principal", "User:a", "--topic", "t"}, "--consumer needs a --group"},
			{[]string{"add", "--consumer", "--allow-principal", "User:a", "--topic", "t", "--group", "g", "--cluster"}, "go with --producer"},
			{[]string{"add", "--idempotent", "--allow-principal", "User:a", "--topic", "t"}, "--idempotent goes with --producer"},
			{[]string{"add", "extra", "--allow-principal", "User:a", "--topic", "t"}, `unexpected argument "extra"`},
			{[]string{"list", "--allow-principal", "User:a"}, "flag provided but not defined: -allow-principal"},
			{[]string{"list", "--principal", "nobody"}, "want Type:Name"},
			{[]string{"delete", "--force", "--resource-pattern-type", "sideways"}, `want literal, prefixed, match or any`},
			{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		} {
			r := acls(t, tc.args...)
			if r.code != admincli.ExitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("vigil acls %s: exit %d, want %d with %q in stderr:\n%s", strings.Join(tc.args, " "), r.code, admincli.ExitUsage, tc.want, r.stderr)
			}
		}
		r := acls(t, "-h")
		if r.code != admincli.ExitOK || !strings.Contains(r.stdout, "--resource-pattern-type literal|prefixed") {
			t.Errorf("acls -h: exit %d\n%s", r.code, r.stdout)
		}
	})

	t.Run("not allowed", func(t *testing.T) {
		pass := writeFile(t, "p", "nobody-secret-1\n")
		run(t, admin, "nobody-secret-1\n", "users", "add", "nobody", "--password-stdin").must(t)
		r := run(t, sb.userEnv("nobody", pass), "", "acls", "add", "--allow-principal", "User:nobody", "--operation", "All", "--cluster")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stdout", r.stdout, `CLUSTER\s+kafka-cluster\s+LITERAL\s+User:nobody\s+\*\s+ALL\s+ALLOW\s+error: CLUSTER_AUTHORIZATION_FAILED`)
		wantMatch(t, "stderr", r.stderr, `1 ACL of 1 could not be created`)
		r = run(t, sb.userEnv("nobody", pass), "", "acls", "list")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stderr", r.stderr, `CLUSTER_AUTHORIZATION_FAILED`)
	})
}

// TestACLsTakeEffect: a SCRAM user may not produce to a topic until `vigil
// acls add --producer` lets it, and may again not once `vigil acls delete`
// takes that back.
func TestACLsTakeEffect(t *testing.T) {
	sb := startSecuredBroker(t)
	admin := sb.adminEnv()
	run(t, admin, "", "topics", "create", "audit").must(t)
	run(t, admin, "writer-secret-1\n", "users", "add", "writer", "--password-stdin").must(t)

	produce := func() error {
		t.Helper()
		cl := scramClient(t, sb.addr(config.SASLPlaintext), "writer", "writer-secret-1",
			kgo.DefaultProduceTopic("audit"), kgo.RetryTimeout(3*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("entry")}).FirstErr()
	}
	if err := produce(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce before any ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	run(t, admin, "", "acls", "add", "--producer", "--allow-principal", "User:writer", "--topic", "audit").must(t)
	if err := produce(); err != nil {
		t.Fatalf("produce after acls add --producer: %v", err)
	}
	run(t, admin, "", "acls", "delete", "--producer", "--allow-principal", "User:writer", "--topic", "audit").must(t)
	if err := produce(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce after acls delete: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}

// TestACLsWithoutAuthorizer: a broker without --authorizer acl says so.
func TestACLsWithoutAuthorizer(t *testing.T) {
	addr := startBroker(t)
	r := cli(t, addr, "acls", "list")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `SECURITY_DISABLED: No Authorizer is configured`)
	r = cli(t, addr, "acls", "add", "--allow-principal", "User:a", "--topic", "t", "--operation", "Read")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stdout", r.stdout, `error: SECURITY_DISABLED`)
}
