package admincli

// vigil users: SCRAM credentials (KIP-554), through a broker's API or
// straight into a metadata store.
//
// Through the API (the default): DescribeUserScramCredentials needs
// Describe on the cluster, AlterUserScramCredentials Alter; kadm salts
// the password on this side, so it never crosses the network.
//
// Straight into the store (--data-dir or --metadata): the same records a
// broker keeps (package security), for the first administrator of a
// cluster that has none yet. The embedded store is a bbolt file that one
// process at a time may open: a running broker holds its lock, and the
// command says to go through that broker instead. etcd has no such lock;
// running brokers see the change at their next poll of the store.
//
// Passwords come from stdin or a file, never from a flag (ps and shell
// history would show it), and are refused when SASLprep would change them
// (package sasl explains why), on both paths, so every Kafka client
// derives the same keys from them.

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/meta/etcdstore"
	"github.com/vigilhq/vigil/internal/sasl"
	"github.com/vigilhq/vigil/internal/security"
)

const usersUsage = `Usage:
  vigil users add NAME (--password-stdin | --password-file FILE) [--mechanism M ...] [--iterations N] [flags]
  vigil users delete NAME... [--mechanism M ...] [flags]
  vigil users list [NAME...] [flags]

SCRAM users of the SASL listeners. By default through a broker's API
(--brokers and the client security flags below; changing users needs Alter
on the cluster, listing them Describe). With --data-dir or --metadata the
credentials are written straight into the metadata store instead, so the
first administrator exists before any broker runs:

  vigil users add admin --password-stdin --data-dir /var/lib/vigil < admin.pass
  vigil serve --data-dir /var/lib/vigil --listen SASL_PLAINTEXT://:9092 --authorizer acl --super-users User:admin

User flags:
  --mechanism M         SCRAM-SHA-512 (default) or SCRAM-SHA-256; repeatable or comma-separated.
                        delete: default every mechanism the user has
  --iterations N        add: PBKDF2 iterations, 4096 (default) to 16384
  --password-stdin      add: the password is the first line of stdin
  --password-file FILE  add: the password is the first line of FILE (never a flag: ps would show it)
  --data-dir DIR        the embedded metadata store DIR/meta.db, of a broker that is not running
  --metadata URL        a cluster's etcd, etcd://host:port[,host:port...][/prefix], brokers running or not;
                        a secured etcd with vigil serve's --etcd-ca, --etcd-cert, --etcd-key,
                        --etcd-username and --etcd-password-file

` + commonUsage

// userFlags are the flags of the users subcommands; add registers all,
// delete and list the ones that apply to them.
type userFlags struct {
	fs            *flag.FlagSet
	mechanisms    listFlag
	iterations    int
	passwordStdin bool
	passwordFile  string
	dataDir       string
	metadata      string
	// A secured etcd, as vigil serve reaches it.
	etcd config.Broker
}

func (f *userFlags) register(fs *flag.FlagSet, sub string) {
	f.fs = fs
	f.mechanisms.split = true
	if sub != "list" {
		fs.Var(&f.mechanisms, "mechanism", "SCRAM `mechanism`: SCRAM-SHA-512 or SCRAM-SHA-256 (repeatable or comma-separated)")
	}
	if sub == "add" {
		fs.IntVar(&f.iterations, "iterations", sasl.DefaultScramIterations, "PBKDF2 iterations of the credential (4096 to 16384)")
		fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
		fs.StringVar(&f.passwordFile, "password-file", "", "read the password from the first line of `file`")
	}
	fs.StringVar(&f.dataDir, "data-dir", "", "write the embedded metadata store DIR/meta.db directly (the broker must not be running)")
	fs.StringVar(&f.metadata, "metadata", "", "write a cluster's etcd directly: etcd://host:port[,host:port...][/prefix]")
	fs.StringVar(&f.etcd.EtcdCA, "etcd-ca", "", "with --metadata: PEM CA bundle the etcd members' certificates are verified against (speak TLS to etcd)")
	fs.StringVar(&f.etcd.EtcdCert, "etcd-cert", "", "with --metadata: PEM client certificate for etcd's --client-cert-auth (with --etcd-key)")
	fs.StringVar(&f.etcd.EtcdKey, "etcd-key", "", "with --metadata: PEM private key of --etcd-cert")
	fs.StringVar(&f.etcd.EtcdUsername, "etcd-username", "", "with --metadata: etcd user, for an etcd with authentication on (with --etcd-password-file)")
	fs.StringVar(&f.etcd.EtcdPasswordFile, "etcd-password-file", "", "with --metadata: file whose first line is the etcd user's password")
}

// mechs returns the chosen mechanisms in Kafka's spelling, def when none
// was given.
func (f *userFlags) mechs(def []string) ([]string, error) {
	if len(f.mechanisms.vals) == 0 {
		return def, nil
	}
	var out []string
	for _, m := range f.mechanisms.vals {
		switch u := strings.ToUpper(m); u {
		case sasl.ScramSHA256, sasl.ScramSHA512:
			if !slices.Contains(out, u) {
				out = append(out, u)
			}
		default:
			return nil, usagef("--mechanism %q: want %s or %s", m, sasl.ScramSHA512, sasl.ScramSHA256)
		}
	}
	return out, nil
}

// backend opens where the credentials live: the metadata store when
// --data-dir or --metadata is given, else the brokers' API.
func (f *userFlags) backend(ctx context.Context, inv *invocation, verb string) (userBackend, error) {
	explicit := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { explicit[fl.Name] = true })
	switch {
	case f.dataDir != "" && f.metadata != "":
		return nil, usagef("--data-dir and --metadata name two different stores: give one")
	case (f.dataDir != "" || f.metadata != "") && explicit["brokers"]:
		return nil, usagef("--brokers goes through a broker, --data-dir and --metadata write the store directly: give one")
	case f.metadata == "" && (f.etcd.EtcdCA != "" || f.etcd.EtcdCert != "" || f.etcd.EtcdKey != "" || f.etcd.EtcdUsername != "" || f.etcd.EtcdPasswordFile != ""):
		return nil, usagef("--etcd-* flags go with --metadata etcd://...")
	case (f.etcd.EtcdCert == "") != (f.etcd.EtcdKey == ""):
		return nil, usagef("--etcd-cert and --etcd-key go together")
	case (f.etcd.EtcdUsername == "") != (f.etcd.EtcdPasswordFile == ""):
		return nil, usagef("--etcd-username and --etcd-password-file go together")
	case f.dataDir != "":
		return openBoltUsers(ctx, f.dataDir, verb == "add", verb, inv.stderr)
	case f.metadata != "":
		return openEtcdUsers(ctx, f.metadata, f.etcd, inv.timeout, inv.stderr)
	}
	adm, closeFn, err := inv.connect()
	if err != nil {
		return nil, err
	}
	return &apiUsers{adm: adm, closeFn: closeFn}, nil
}

// password reads the new user's password: the first line of stdin or of
// --password-file, without its line ending.
func (f *userFlags) password(stdin io.Reader) (string, error) {
	var line string
	switch {
	case f.passwordStdin && f.passwordFile != "":
		return "", usagef("--password-stdin and --password-file: give one")
	case f.passwordStdin:
		s, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		line = s
	case f.passwordFile != "":
		raw, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		line, _, _ = strings.Cut(string(raw), "\n")
	default:
		return "", usagef("the password comes from --password-stdin or --password-file FILE (never from a flag)")
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", usagef("the password is empty")
	}
	return line, nil
}

func userCommands() map[string]subcommand {
	return map[string]subcommand{
		"add": {args: "NAME (--password-stdin | --password-file FILE) [--mechanism M ...] [--iterations N]", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			var f userFlags
			f.register(fs, "add")
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.pos) != 1 {
					return usagef("want exactly one user NAME")
				}
				user := inv.pos[0]
				mechs, err := f.mechs([]string{sasl.ScramSHA512})
				if err != nil {
					return err
				}
				if f.iterations < sasl.MinScramIterations || f.iterations > sasl.MaxScramIterations {
					return usagef("--iterations %d: want %d to %d (Kafka's bounds)", f.iterations, sasl.MinScramIterations, sasl.MaxScramIterations)
				}
				password, err := f.password(inv.stdin)
				if err != nil {
					return err
				}
				// The checks NewScramCredential makes (SASLprep above
				// all) apply to the API path too.
				if _, err := sasl.NewScramCredential(mechs[0], password, f.iterations); err != nil {
					return usagef("%s", strings.TrimPrefix(err.Error(), "sasl: "))
				}
				b, err := f.backend(ctx, inv, "add")
				if err != nil {
					return err
				}
				defer b.close()
				rows, err := b.upsert(ctx, user, password, mechs, f.iterations)
				if err != nil {
					return err
				}
				return reportCreds(inv.out, rows, "added", "could not be added", true)
			}
		}},
		"delete": {args: "NAME... [--mechanism M ...]", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			var f userFlags
			f.register(fs, "delete")
			return func(ctx context.Context, inv *invocation) error {
				if err := needArgs(inv, "user"); err != nil {
					return err
				}
				mechs, err := f.mechs(nil)
				if err != nil {
					return err
				}
				b, err := f.backend(ctx, inv, "delete")
				if err != nil {
					return err
				}
				defer b.close()
				var rows []credChange
				for _, user := range dedupe(inv.pos) {
					r, err := deleteUser(ctx, b, user, mechs)
					if err != nil {
						return err
					}
					rows = append(rows, r...)
				}
				return reportCreds(inv.out, rows, "deleted", "could not be deleted", false)
			}
		}},
		"list": {args: "[NAME...]", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			var f userFlags
			f.register(fs, "list")
			return func(ctx context.Context, inv *invocation) error {
				b, err := f.backend(ctx, inv, "list")
				if err != nil {
					return err
				}
				defer b.close()
				users, err := b.users(ctx, dedupe(inv.pos))
				if err != nil {
					return err
				}
				return printUsers(inv.out, users)
			}
		}},
	}
}

// deleteUser deletes mechs of user, or every mechanism it has when mechs
// is empty.
func deleteUser(ctx context.Context, b userBackend, user string, mechs []string) ([]credChange, error) {
	if len(mechs) == 0 {
		infos, err := b.users(ctx, []string{user})
		if err != nil {
			return nil, err
		}
		if len(infos) != 1 || infos[0].Error != nil {
			e := &jsonErr{Code: kerr.ResourceNotFound.Message, Message: fmt.Sprintf("%s: user %q has no SCRAM credential", kerr.ResourceNotFound.Message, user)}
			if len(infos) == 1 && infos[0].Error != nil {
				e = infos[0].Error
			}
			return []credChange{{User: user, Mechanism: "-", Error: e}}, nil
		}
		for _, c := range infos[0].Credentials {
			mechs = append(mechs, c.Mechanism)
		}
	}
	return b.remove(ctx, user, mechs)
}

// userInfo is one user of `vigil users list`.
type userInfo struct {
	User        string     `json:"user"`
	Credentials []credInfo `json:"credentials"`
	Error       *jsonErr   `json:"error,omitempty"`
}

type credInfo struct {
	Mechanism  string `json:"mechanism"`
	Iterations int    `json:"iterations"`
}

// credChange is one credential added or deleted.
type credChange struct {
	User       string   `json:"user"`
	Mechanism  string   `json:"mechanism"`
	Iterations int      `json:"iterations,omitempty"`
	OK         bool     `json:"ok"`
	Error      *jsonErr `json:"error,omitempty"`
}

func printUsers(out *printer, users []userInfo) error {
	failed := 0
	for _, u := range users {
		if u.Error != nil {
			failed++
		}
	}
	if out.json {
		if users == nil {
			users = []userInfo{}
		}
		if err := out.encode(users); err != nil {
			return err
		}
	} else {
		var rows [][]string
		for _, u := range users {
			if u.Error != nil {
				rows = append(rows, []string{u.User, "-", "-", "error: " + u.Error.Message})
			}
			for _, c := range u.Credentials {
				rows = append(rows, []string{u.User, c.Mechanism, itoa(c.Iterations), ""})
			}
		}
		if err := out.table([]string{"USER", "MECHANISM", "ITERATIONS", "ERROR"}, rows); err != nil {
			return err
		}
	}
	if failed > 0 {
		return failedf("%s of %d could not be described", plural(failed, "user", "users"), len(users))
	}
	return nil
}

func reportCreds(out *printer, rows []credChange, okText, failText string, withIterations bool) error {
	failed := 0
	for _, r := range rows {
		if !r.OK {
			failed++
		}
	}
	if out.json {
		if rows == nil {
			rows = []credChange{}
		}
		if err := out.encode(rows); err != nil {
			return err
		}
	} else {
		header := []string{"USER", "MECHANISM", "RESULT"}
		if withIterations {
			header = []string{"USER", "MECHANISM", "ITERATIONS", "RESULT"}
		}
		table := make([][]string, 0, len(rows))
		for _, r := range rows {
			cells := []string{r.User, r.Mechanism}
			if withIterations {
				cells = append(cells, itoa(r.Iterations))
			}
			table = append(table, append(cells, resultText(r.OK, r.Error, okText)))
		}
		if err := out.table(header, table); err != nil {
			return err
		}
	}
	if failed > 0 {
		return failedf("%s of %d %s", plural(failed, "credential", "credentials"), len(rows), failText)
	}
	return nil
}

// userBackend is where `vigil users` reads and writes credentials.
type userBackend interface {
	// users lists the named users (every user when names is empty); a
	// named user without credentials has Error set.
	users(ctx context.Context, names []string) ([]userInfo, error)
	upsert(ctx context.Context, user, password string, mechs []string, iterations int) ([]credChange, error)
	remove(ctx context.Context, user string, mechs []string) ([]credChange, error)
	close()
}

// apiUsers goes through a broker: DescribeUserScramCredentials and
// AlterUserScramCredentials.
type apiUsers struct {
	adm     *kadm.Client
	closeFn func()
}

func (a *apiUsers) close() { a.closeFn() }

func (a *apiUsers) users(ctx context.Context, names []string) ([]userInfo, error) {
	described, err := a.adm.DescribeUserSCRAMs(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe users: %w", err)
	}
	var out []userInfo
	for _, d := range described.Sorted() {
		u := userInfo{User: d.User, Credentials: []credInfo{}, Error: newJSONErr(d.Err, d.ErrMessage)}
		for _, c := range d.CredInfos {
			u.Credentials = append(u.Credentials, credInfo{Mechanism: c.Mechanism.String(), Iterations: int(c.Iterations)})
		}
		sort.Slice(u.Credentials, func(i, j int) bool { return u.Credentials[i].Mechanism < u.Credentials[j].Mechanism })
		out = append(out, u)
	}
	for _, n := range names {
		if _, ok := described[n]; !ok {
			out = append(out, userInfo{User: n, Credentials: []credInfo{}, Error: answerError(false, nil, "", "user")})
		}
	}
	return out, nil
}

func kadmMechanism(m string) kadm.ScramMechanism {
	if m == sasl.ScramSHA256 {
		return kadm.ScramSha256
	}
	return kadm.ScramSha512
}

func (a *apiUsers) upsert(ctx context.Context, user, password string, mechs []string, iterations int) ([]credChange, error) {
	var ups []kadm.UpsertSCRAM
	for _, m := range mechs {
		ups = append(ups, kadm.UpsertSCRAM{User: user, Mechanism: kadmMechanism(m), Iterations: int32(iterations), Password: password})
	}
	res, err := a.adm.AlterUserSCRAMs(ctx, nil, ups)
	if err != nil {
		return nil, fmt.Errorf("alter users: %w", err)
	}
	return a.changes(res, user, mechs, iterations), nil
}

func (a *apiUsers) remove(ctx context.Context, user string, mechs []string) ([]credChange, error) {
	var dels []kadm.DeleteSCRAM
	for _, m := range mechs {
		dels = append(dels, kadm.DeleteSCRAM{User: user, Mechanism: kadmMechanism(m)})
	}
	res, err := a.adm.AlterUserSCRAMs(ctx, dels, nil)
	if err != nil {
		return nil, fmt.Errorf("alter users: %w", err)
	}
	return a.changes(res, user, mechs, 0), nil
}

// changes spreads the per-user answer over the user's mechanisms: Kafka
// answers AlterUserScramCredentials once per user.
func (a *apiUsers) changes(res kadm.AlteredUserSCRAMs, user string, mechs []string, iterations int) []credChange {
	r, ok := res[user]
	e := answerError(ok, r.Err, r.ErrMessage, "user")
	var out []credChange
	for _, m := range mechs {
		out = append(out, credChange{User: user, Mechanism: m, Iterations: iterations, OK: e == nil, Error: e})
	}
	return out
}

// storeUsers writes a metadata store directly, as a broker would.
type storeUsers struct {
	store interface {
		meta.SecurityStore
		Close() error
	}
	state *security.State
}

// openBoltUsers opens DIR/meta.db; create makes it (and DIR) when absent,
// for a first user before the broker's first start.
func openBoltUsers(ctx context.Context, dir string, create bool, verb string, stderr io.Writer) (*storeUsers, error) {
	path := filepath.Join(dir, "meta.db")
	if _, err := os.Stat(path); err != nil {
		if !errors.Is(err, os.ErrNotExist) || !create {
			return nil, storeError("no metadata store at %s (is --data-dir the broker's --data-dir?): %v", path, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, storeError("--data-dir: %v", err)
		}
	}
	// boltstore.Open gives up on the file lock after a second: a broker
	// running on dir holds it for as long as it runs.
	st, err := boltstore.Open(path)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, storeError("the broker is running on %s: %s users through it with --brokers (its metadata file %s is locked)", dir, verb, path)
	}
	if err != nil {
		return nil, storeError("%v", err)
	}
	return newStoreUsers(ctx, st, stderr)
}

// openEtcdUsers opens the etcd store of a cluster, as vigil serve
// --metadata does, with the --etcd-* access of access.
func openEtcdUsers(ctx context.Context, url string, access config.Broker, timeout time.Duration, stderr io.Writer) (*storeUsers, error) {
	endpoints, prefix, err := config.ParseEtcdURL(url)
	if err != nil {
		return nil, usagef("--metadata %q: %v", url, err)
	}
	a, err := access.EtcdAccess()
	if err != nil {
		return nil, storeError("%v", err)
	}
	st, err := etcdstore.Open(ctx, etcdstore.Config{Endpoints: endpoints, Prefix: prefix, DialTimeout: min(timeout, 5*time.Second),
		TLS: a.TLS, Username: a.Username, Password: a.Password})
	if err != nil {
		return nil, storeError("cannot open the cluster's metadata at %s: %v", url, err)
	}
	return newStoreUsers(ctx, st, stderr)
}

func newStoreUsers(ctx context.Context, st interface {
	meta.SecurityStore
	Close() error
}, stderr io.Writer) (*storeUsers, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	state, err := security.Open(ctx, st, nil, log)
	if err != nil {
		st.Close()
		return nil, storeError("%v", err)
	}
	return &storeUsers{store: st, state: state}, nil
}

func (s *storeUsers) close() { s.store.Close() }

func (s *storeUsers) users(_ context.Context, names []string) ([]userInfo, error) {
	all := s.state.Users()
	if len(names) == 0 {
		for n := range all {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	var out []userInfo
	for _, n := range names {
		u := userInfo{User: n, Credentials: []credInfo{}}
		creds, ok := all[n]
		if !ok {
			u.Error = notFound(n, "")
		}
		for _, c := range creds {
			u.Credentials = append(u.Credentials, credInfo{Mechanism: c.Mechanism, Iterations: c.Iterations})
		}
		out = append(out, u)
	}
	return out, nil
}

func notFound(user, mechanism string) *jsonErr {
	return newJSONErr(kerr.ResourceNotFound, fmt.Sprintf("user %q has no %s credential", user, cmp.Or(mechanism, "SCRAM")))
}

// storeError is a failure of the metadata store: exit 1 with its own
// message, not one about reaching brokers.
func storeError(format string, args ...any) error {
	return &failedError{msg: fmt.Sprintf(format, args...)}
}

func (s *storeUsers) upsert(ctx context.Context, user, password string, mechs []string, iterations int) ([]credChange, error) {
	var changes []security.ScramChange
	for _, m := range mechs {
		c, err := sasl.NewScramCredential(m, password, iterations)
		if err != nil {
			return nil, err
		}
		changes = append(changes, security.ScramChange{User: user, Mechanism: m, Credential: &c})
	}
	if err := s.state.AlterScram(ctx, changes); err != nil {
		return nil, storeError("%v", err)
	}
	var out []credChange
	for _, m := range mechs {
		out = append(out, credChange{User: user, Mechanism: m, Iterations: iterations, OK: true})
	}
	return out, nil
}

// remove deletes the credentials the user has and reports the others as
// RESOURCE_NOT_FOUND, as a broker does.
func (s *storeUsers) remove(ctx context.Context, user string, mechs []string) ([]credChange, error) {
	has := map[string]bool{}
	for _, c := range s.state.Users()[user] {
		has[c.Mechanism] = true
	}
	var changes []security.ScramChange
	var out []credChange
	for _, m := range mechs {
		r := credChange{User: user, Mechanism: m, OK: has[m]}
		if has[m] {
			changes = append(changes, security.ScramChange{User: user, Mechanism: m})
		} else {
			r.Error = notFound(user, m)
		}
		out = append(out, r)
	}
	if len(changes) > 0 {
		if err := s.state.AlterScram(ctx, changes); err != nil {
			return nil, storeError("%v", err)
		}
	}
	return out, nil
}
