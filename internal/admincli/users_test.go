package admincli_test

import (
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/vigilhq/vigil/internal/admincli"
	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/meta/etcdstore/etcdtest"
)

type userJSON struct {
	User        string `json:"user"`
	Credentials []struct {
		Mechanism  string `json:"mechanism"`
		Iterations int    `json:"iterations"`
	} `json:"credentials"`
	Error *jsonErr `json:"error"`
}

type credJSON struct {
	User       string   `json:"user"`
	Mechanism  string   `json:"mechanism"`
	Iterations int      `json:"iterations"`
	OK         bool     `json:"ok"`
	Error      *jsonErr `json:"error"`
}

// usersOf is `vigil users list --json` as user -> "MECHANISM/iterations".
func usersOf(t *testing.T, env map[string]string, args ...string) map[string][]string {
	t.Helper()
	var users []userJSON
	decode(t, run(t, env, "", append([]string{"users", "list", "--json"}, args...)...).must(t), &users)
	out := map[string][]string{}
	for _, u := range users {
		if u.Error != nil {
			t.Errorf("user %s: %+v", u.User, u.Error)
		}
		for _, c := range u.Credentials {
			out[u.User] = append(out[u.User], fmt.Sprintf("%s/%d", c.Mechanism, c.Iterations))
		}
	}
	return out
}

func wantUsers(t *testing.T, got map[string][]string, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("users %v, want %v", got, want)
	}
	for u, w := range want {
		if g := strings.Join(got[u], ","); g != w {
			t.Errorf("user %s has %q, want %q (all: %v)", u, g, w, got)
		}
	}
}

// TestUsersDataDir writes users into the embedded store of a broker that
// is not running, then starts the broker on it: the users authenticate
// with franz-go. While the broker runs, the store is locked and the
// command says to go through the broker.
func TestUsersDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh") // does not exist yet
	r := run(t, nil, "admin-secret-1\n", "users", "add", "admin", "--password-stdin", "--data-dir", dir).must(t)
	wantRow(t, r, "USER", "MECHANISM", "ITERATIONS", "RESULT")
	wantRow(t, r, "admin", "SCRAM-SHA-512", "4096", "added")

	pass := writeFile(t, "alice.pass", "alice-secret-1\r\nignored second line\n")
	var changes []credJSON
	decode(t, run(t, nil, "", "users", "add", "alice", "--mechanism", "scram-sha-256,SCRAM-SHA-512", "--iterations", "8192",
		"--password-file", pass, "--data-dir", dir, "--json").must(t), &changes)
	if len(changes) != 2 || !changes[0].OK || changes[0].Mechanism != "SCRAM-SHA-256" || changes[1].Mechanism != "SCRAM-SHA-512" || changes[1].Iterations != 8192 {
		t.Errorf("add alice --json: %+v", changes)
	}
	run(t, nil, "bob-secret-1", "users", "add", "bob", "--mechanism", "SCRAM-SHA-256", "--mechanism", "SCRAM-SHA-512", "--password-stdin", "--data-dir", dir).must(t)

	r = run(t, nil, "", "users", "list", "--data-dir", dir).must(t)
	wantRow(t, r, "USER", "MECHANISM", "ITERATIONS")
	wantRow(t, r, "alice", "SCRAM-SHA-256", "8192")
	wantUsers(t, usersOf(t, nil, "--data-dir", dir), map[string]string{
		"admin": "SCRAM-SHA-512/4096", "alice": "SCRAM-SHA-256/8192,SCRAM-SHA-512/8192", "bob": "SCRAM-SHA-256/4096,SCRAM-SHA-512/4096"})

	// delete: one mechanism, then every mechanism of a user.
	r = run(t, nil, "", "users", "delete", "alice", "--mechanism", "SCRAM-SHA-256", "--data-dir", dir).must(t)
	wantRow(t, r, "alice", "SCRAM-SHA-256", "deleted")
	r = run(t, nil, "", "users", "delete", "bob", "--data-dir", dir).must(t)
	wantRow(t, r, "bob", "SCRAM-SHA-256", "deleted")
	wantRow(t, r, "bob", "SCRAM-SHA-512", "deleted")
	wantUsers(t, usersOf(t, nil, "--data-dir", dir), map[string]string{"admin": "SCRAM-SHA-512/4096", "alice": "SCRAM-SHA-512/8192"})
	r = run(t, nil, "", "users", "delete", "alice", "--mechanism", "SCRAM-SHA-256", "--data-dir", dir)
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stdout", r.stdout, `alice\s+SCRAM-SHA-256\s+error: RESOURCE_NOT_FOUND`)
	r = run(t, nil, "", "users", "list", "nobody", "--data-dir", dir)
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stdout", r.stdout, `nobody.*RESOURCE_NOT_FOUND`)

	// The broker reads them at its start.
	b := runBroker(t, securedConfig(t, dir, certstest.NewCA(t, "ca")))
	sasl := b.addr(config.SASLPlaintext)
	if err := authErr(sasl, scram512("admin", "admin-secret-1")); err != nil {
		t.Errorf("admin with SCRAM-SHA-512: %v", err)
	}
	if err := authErr(sasl, scram512("alice", "alice-secret-1")); err != nil {
		t.Errorf("alice with SCRAM-SHA-512 (password from the first line of a CRLF file): %v", err)
	}
	if err := authErr(sasl, scram.Auth{User: "alice", Pass: "alice-secret-1"}.AsSha256Mechanism()); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("alice with her deleted SCRAM-SHA-256: %v", err)
	}
	if err := authErr(sasl, scram512("bob", "bob-secret-1")); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("deleted bob: %v", err)
	}
	// A client of the new admin: it may do anything.
	ctx := testCtx(t)
	if err := scramClient(t, sasl, "admin", "admin-secret-1").Ping(ctx); err != nil {
		t.Errorf("admin ping: %v", err)
	}

	// The running broker holds the file: the command fails fast and says
	// what to do instead.
	for _, args := range [][]string{
		{"users", "add", "carol", "--password-stdin", "--data-dir", dir},
		{"users", "list", "--data-dir", dir},
	} {
		start := time.Now()
		r = run(t, nil, "carol-secret-1\n", args...)
		wantCode(t, r, admincli.ExitFailed)
		verb := args[1]
		wantMatch(t, "stderr", r.stderr, `the broker is running on `+regexp.QuoteMeta(dir)+`: `+verb+` users through it with --brokers`)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("vigil %s took %s to see the lock", strings.Join(args, " "), d)
		}
	}
	b.stop()
	run(t, nil, "carol-secret-1\n", "users", "add", "carol", "--password-stdin", "--data-dir", dir).must(t)
}

// TestUsersAPI manages users through a running broker, over
// SASL_PLAINTEXT as its admin, and checks the authorizer's answer to a
// user who may not.
func TestUsersAPI(t *testing.T) {
	sb := startSecuredBroker(t)
	admin := sb.adminEnv()
	sasl := sb.addr(config.SASLPlaintext)

	r := run(t, admin, "dave-secret-1\n", "users", "add", "dave", "--password-stdin", "--mechanism", "SCRAM-SHA-256,SCRAM-SHA-512", "--iterations", "4096").must(t)
	wantRow(t, r, "dave", "SCRAM-SHA-256", "4096", "added")
	wantRow(t, r, "dave", "SCRAM-SHA-512", "4096", "added")
	erin := writeFile(t, "erin.pass", "erin-secret-1\n")
	run(t, admin, "", "users", "add", "erin", "--password-file", erin, "--iterations", "16384").must(t)
	wantUsers(t, usersOf(t, admin), map[string]string{
		"admin": "SCRAM-SHA-512/4096", "dave": "SCRAM-SHA-256/4096,SCRAM-SHA-512/4096", "erin": "SCRAM-SHA-512/16384"})
	wantUsers(t, usersOf(t, admin, "erin"), map[string]string{"erin": "SCRAM-SHA-512/16384"})

	if err := authErr(sasl, scram512("dave", "dave-secret-1")); err != nil {
		t.Errorf("dave: %v", err)
	}
	if err := authErr(sasl, scram512("erin", "erin-secret-1")); err != nil {
		t.Errorf("erin: %v", err)
	}

	// A user who is not a super user may not list users, until an ACL
	// allows Describe on the cluster.
	r = run(t, sb.userEnv("erin", erin), "", "users", "list")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `CLUSTER_AUTHORIZATION_FAILED`)
	run(t, admin, "", "acls", "add", "--allow-principal", "User:erin", "--operation", "Describe", "--cluster").must(t)
	wantUsers(t, usersOf(t, sb.userEnv("erin", erin)), map[string]string{
		"admin": "SCRAM-SHA-512/4096", "dave": "SCRAM-SHA-256/4096,SCRAM-SHA-512/4096", "erin": "SCRAM-SHA-512/16384"})
	// Describe is not Alter.
	r = run(t, sb.userEnv("erin", erin), "frank-secret-1\n", "users", "add", "frank", "--password-stdin")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stdout+stderr", r.stdout+r.stderr, `CLUSTER_AUTHORIZATION_FAILED`)

	// A new password replaces the old one.
	run(t, admin, "dave-secret-2\n", "users", "add", "dave", "--password-stdin").must(t)
	if err := authErr(sasl, scram512("dave", "dave-secret-2")); err != nil {
		t.Errorf("dave's new password: %v", err)
	}
	if err := authErr(sasl, scram512("dave", "dave-secret-1")); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("dave's old password: %v", err)
	}

	// delete without --mechanism: every mechanism dave has.
	var changes []credJSON
	decode(t, run(t, admin, "", "users", "delete", "dave", "--json").must(t), &changes)
	if len(changes) != 2 || !changes[0].OK || !changes[1].OK {
		t.Errorf("delete dave --json: %+v", changes)
	}
	if err := authErr(sasl, scram512("dave", "dave-secret-2")); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("deleted dave: %v", err)
	}
	wantUsers(t, usersOf(t, admin), map[string]string{"admin": "SCRAM-SHA-512/4096", "erin": "SCRAM-SHA-512/16384"})

	r = run(t, admin, "", "users", "delete", "dave")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stdout", r.stdout, `dave\s+-\s+error: RESOURCE_NOT_FOUND`)
	r = run(t, admin, "", "users", "delete", "erin", "--mechanism", "SCRAM-SHA-256")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stdout", r.stdout, `erin\s+SCRAM-SHA-256\s+error: RESOURCE_NOT_FOUND`)
	r = run(t, admin, "", "users", "list", "ghost")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stdout", r.stdout, `ghost.*RESOURCE_NOT_FOUND`)
}

// TestUsersEtcd writes a cluster's etcd directly, before its broker runs
// and while it runs: the broker sees users added and deleted there.
func TestUsersEtcd(t *testing.T) {
	member := etcdtest.StartMember(t)
	url := "etcd://" + member.Endpoint + "/vigil-users"
	run(t, nil, "carol-secret-1\n", "users", "add", "carol", "--password-stdin", "--metadata", url).must(t)
	wantUsers(t, usersOf(t, nil, "--metadata", url), map[string]string{"carol": "SCRAM-SHA-512/4096"})
	// Another prefix is another cluster.
	wantUsers(t, usersOf(t, nil, "--metadata", "etcd://"+member.Endpoint+"/other"), map[string]string{})

	dir := t.TempDir()
	cfg := securedConfig(t, dir, certstest.NewCA(t, "ca"))
	cfg.Metadata = url
	cfg.WAL = "object"
	b := runBroker(t, cfg)
	sasl := b.addr(config.SASLPlaintext)
	if err := authErr(sasl, scram512("carol", "carol-secret-1")); err != nil {
		t.Fatalf("carol, written to etcd before the broker started: %v", err)
	}

	// While the broker runs: it polls the store.
	run(t, nil, "dan-secret-1\n", "users", "add", "dan", "--password-stdin", "--metadata", url).must(t)
	run(t, nil, "", "users", "delete", "carol", "--metadata", url).must(t)
	eventually(t, 10*time.Second, func() error {
		if err := authErr(sasl, scram512("dan", "dan-secret-1")); err != nil {
			return fmt.Errorf("dan, added while the broker runs: %w", err)
		}
		if err := authErr(sasl, scram512("carol", "carol-secret-1")); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			return fmt.Errorf("carol, deleted while the broker runs: %v", err)
		}
		return nil
	})

	r := run(t, nil, "x-secret-1\n", "users", "add", "x", "--password-stdin", "--metadata", "http://"+member.Endpoint)
	wantCode(t, r, admincli.ExitUsage)
	wantMatch(t, "stderr", r.stderr, `--metadata "http://.*": must be an etcd://host:port`)
	r = run(t, nil, "x-secret-1\n", "users", "add", "x", "--password-stdin", "--metadata", "etcd://nowhere")
	wantCode(t, r, admincli.ExitUsage)
	wantMatch(t, "stderr", r.stderr, `--metadata "etcd://nowhere": endpoint "nowhere"`)
	start := time.Now()
	r = run(t, nil, "x-secret-1\n", "users", "add", "x", "--password-stdin", "--metadata", "etcd://"+closedPort(t), "--timeout", "2s")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `cannot open the cluster's metadata at etcd://127\.0\.0\.1:\d+`)
	if strings.Contains(r.stderr, "brokers") {
		t.Errorf("an etcd failure is explained as the brokers': %s", r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("an unreachable etcd took %s to report", d)
	}
}

// TestUsersEtcdTLS writes an etcd that speaks TLS and requires client
// certificates, with vigil serve's --etcd-* flags; a broker given the same
// access authenticates the user.
func TestUsersEtcdTLS(t *testing.T) {
	ca := certstest.NewCA(t, "etcd-ca")
	server := ca.Server("etcd")
	client := ca.Client(pkix.Name{CommonName: "vigil-admin"})
	endpoint := etcdtest.StartTLS(t, etcdtest.TLS{CertFile: server.Cert, KeyFile: server.Key, ClientCAFile: ca.File})
	url := "etcd://" + endpoint + "/vigil-tls"
	access := []string{"--metadata", url, "--etcd-ca", ca.File, "--etcd-cert", client.Cert, "--etcd-key", client.Key}

	run(t, nil, "carol-secret-1\n", append([]string{"users", "add", "carol", "--password-stdin"}, access...)...).must(t)
	wantUsers(t, usersOf(t, nil, access...), map[string]string{"carol": "SCRAM-SHA-512/4096"})
	// Without the client certificate etcd refuses the connection.
	r := run(t, nil, "", "users", "list", "--metadata", url, "--etcd-ca", ca.File, "--timeout", "3s")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `cannot open the cluster's metadata at etcd://`)

	cfg := securedConfig(t, t.TempDir(), certstest.NewCA(t, "kafka-ca"))
	cfg.Metadata, cfg.WAL = url, "object"
	cfg.EtcdCA, cfg.EtcdCert, cfg.EtcdKey = ca.File, client.Cert, client.Key
	b := runBroker(t, cfg)
	if err := authErr(b.addr(config.SASLPlaintext), scram512("carol", "carol-secret-1")); err != nil {
		t.Errorf("carol, written to a TLS etcd: %v", err)
	}
}

// TestUsersErrors: mistakes are refused before anything is touched.
func TestUsersErrors(t *testing.T) {
	dir := t.TempDir()
	pass := writeFile(t, "p", "good-secret-1\n")
	for _, tc := range []struct {
		args  []string
		stdin string
		code  int
		want  string
	}{
		{[]string{"users", "add", "u", "--password-stdin", "--mechanism", "SCRAM-SHA-1"}, "pw-secret-1", admincli.ExitUsage, `--mechanism "SCRAM-SHA-1": want SCRAM-SHA-512 or SCRAM-SHA-256`},
		{[]string{"users", "add", "u", "--password-stdin", "--mechanism", "PLAIN"}, "pw-secret-1", admincli.ExitUsage, `--mechanism "PLAIN"`},
		{[]string{"users", "add", "u", "--password-stdin"}, "", admincli.ExitUsage, "the password is empty"},
		{[]string{"users", "add", "u", "--password-stdin"}, "\nsecond", admincli.ExitUsage, "the password is empty"},
		{[]string{"users", "add", "u", "--password-file", writeFile(t, "empty", "")}, "", admincli.ExitUsage, "the password is empty"},
		// U+00A0 (no-break space) becomes a space under SASLprep.
		{[]string{"users", "add", "u", "--password-stdin"}, "pass\u00a0word", admincli.ExitUsage, "SASLprep"},
		// A control character is prohibited by SASLprep.
		{[]string{"users", "add", "u", "--password-stdin"}, "pass\u0007word", admincli.ExitUsage, "SASLprep"},
		{[]string{"users", "add", "u", "--password", "x"}, "", admincli.ExitUsage, "flag provided but not defined: -password"},
		{[]string{"users", "add", "u"}, "", admincli.ExitUsage, "--password-stdin or --password-file"},
		{[]string{"users", "add", "u", "--password-stdin", "--password-file", pass}, "", admincli.ExitUsage, "give one"},
		{[]string{"users", "add", "u", "--password-file", filepath.Join(dir, "missing")}, "", admincli.ExitFailed, "--password-file: open"},
		{[]string{"users", "add", "u", "v", "--password-file", pass}, "", admincli.ExitUsage, "exactly one user NAME"},
		{[]string{"users", "add", "--password-file", pass}, "", admincli.ExitUsage, "exactly one user NAME"},
		{[]string{"users", "add", "u", "--password-file", pass, "--iterations", "4095"}, "", admincli.ExitUsage, "--iterations 4095: want 4096 to 16384"},
		{[]string{"users", "add", "u", "--password-file", pass, "--iterations", "16385"}, "", admincli.ExitUsage, "--iterations 16385"},
		{[]string{"users", "add", "u", "--password-file", pass, "--data-dir", dir, "--metadata", "etcd://127.0.0.1:2379"}, "", admincli.ExitUsage, "give one"},
		{[]string{"users", "add", "u", "--password-file", pass, "--data-dir", dir, "--brokers", "127.0.0.1:9092"}, "", admincli.ExitUsage, "--brokers goes through a broker"},
		{[]string{"users", "list", "--data-dir", filepath.Join(dir, "nothing-here")}, "", admincli.ExitFailed, "no metadata store at"},
		{[]string{"users", "delete", "--data-dir", dir}, "", admincli.ExitUsage, "name at least one user"},
		{[]string{"users", "delete", "u", "--mechanism", "md5", "--data-dir", dir}, "", admincli.ExitUsage, `--mechanism "md5"`},
		{[]string{"users", "list", "--iterations", "5000"}, "", admincli.ExitUsage, "flag provided but not defined: -iterations"},
		{[]string{"users", "list", "--data-dir", dir, "--etcd-ca", pass}, "", admincli.ExitUsage, "--etcd-* flags go with --metadata"},
		{[]string{"users", "list", "--metadata", "etcd://127.0.0.1:2379", "--etcd-cert", pass}, "", admincli.ExitUsage, "--etcd-cert and --etcd-key go together"},
		{[]string{"users", "list", "--metadata", "etcd://127.0.0.1:2379", "--etcd-username", "root"}, "", admincli.ExitUsage, "--etcd-username and --etcd-password-file go together"},
		{[]string{"users", "list", "--metadata", "etcd://127.0.0.1:2379", "--etcd-ca", filepath.Join(dir, "missing")}, "", admincli.ExitFailed, "--etcd-ca: open"},
		{[]string{"users", "-h"}, "", admincli.ExitOK, "vigil users add NAME"},
	} {
		r := run(t, nil, tc.stdin, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
			t.Errorf("vigil %s: exit %d, want %d with %q in output:\n%s%s", strings.Join(tc.args, " "), r.code, tc.code, tc.want, r.stdout, r.stderr)
		}
	}
	// Nothing was written by the refused commands.
	wantUsers(t, usersOf(t, nil, "--data-dir", mustAdd(t, dir)), map[string]string{"first": "SCRAM-SHA-512/4096"})
}

// mustAdd adds the user "first" to dir's store and returns dir.
func mustAdd(t *testing.T, dir string) string {
	t.Helper()
	run(t, nil, "first-secret-1\n", "users", "add", "first", "--password-stdin", "--data-dir", dir).must(t)
	return dir
}

func eventually(t *testing.T, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
