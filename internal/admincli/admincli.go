// Package admincli is the operator side of `vigil`: the `topics`,
// `groups`, `cluster`, `users` and `acls` commands. They talk to the
// cluster only through franz-go's kadm, so they work against any
// Kafka-compatible cluster, and operators need no Java tools. Every
// command takes the client security flags of package clientsec, so it
// reaches SSL, SASL and mTLS listeners as well as PLAINTEXT ones.
//
// The one exception is `vigil users add|delete|list` with --data-dir or
// --metadata: it writes SCRAM credentials straight into a Vigil metadata
// store (package security), so that the first administrator exists before
// any broker runs.
package admincli

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
)

// Exit codes, shared by every command.
const (
	ExitOK     = 0
	ExitFailed = 1 // the cluster was reached (or not) and the operation failed
	ExitUsage  = 2
)

// DefaultBrokers is where a local `vigil serve` listens on its defaults.
const DefaultBrokers = "127.0.0.1:9092"

// Env is what the commands take from their process, passed in so tests can
// run many commands side by side.
type Env struct {
	Stdin  io.Reader // vigil users --password-stdin; nil: os.Stdin
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// usageError is a mistake on the command line: exit 2, with a hint where
// the flags are described.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// failedError means the per-topic or per-group results (errors included)
// are already on stdout; only a one-line summary remains for stderr.
type failedError struct{ msg string }

func (e *failedError) Error() string { return e.msg }

func failedf(format string, args ...any) error {
	return &failedError{msg: fmt.Sprintf(format, args...)}
}

// common are the flags every subcommand takes.
type common struct {
	brokers string
	json    bool
	timeout time.Duration
	sec     *clientsec.Config // how to pass the listener's security protocol
}

// commonUsage ends every command's usage text: the flags register adds.
const commonUsage = `Common flags:
  --brokers HOST:PORT,...     seed brokers (default 127.0.0.1:9092, env VIGIL_BROKERS)
  --json                      machine-readable output
  --timeout DURATION          give up after this long (default 30s)

Client security (each flag defaults to its VIGIL_* variable, e.g. VIGIL_SASL_USERNAME):
  --security-protocol P       the listener's: PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
  --sasl-mechanism M          SCRAM-SHA-512 (default), SCRAM-SHA-256, PLAIN or OAUTHBEARER
  --sasl-username NAME        the SASL user
  --sasl-password-file FILE   its password, the file's first line (or env VIGIL_SASL_PASSWORD;
                              never a flag, which ps would show)
  --sasl-token-file FILE      OAUTHBEARER: the JWT, reread at each authentication
  --tls-ca FILE               PEM CAs the brokers' certificates must chain to (default: the system's)
  --tls-cert FILE --tls-key FILE  client certificate and key for mTLS
  --tls-server-name NAME      name the brokers' certificates must carry (default: the host dialed)

Exit status: 0 ok, 1 the operation failed, 2 usage error.
`

func (c *common) register(fs *flag.FlagSet, getenv func(string) string) {
	def := DefaultBrokers
	if v := strings.TrimSpace(getenv("VIGIL_BROKERS")); v != "" {
		def = v
	}
	fs.StringVar(&c.brokers, "brokers", def, "comma-separated seed brokers (env VIGIL_BROKERS)")
	fs.BoolVar(&c.json, "json", false, "machine-readable JSON output instead of tables")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up on the whole operation after this long")
	c.sec = clientsec.Register(fs, getenv)
}

// validate checks the common flags and returns the seed brokers.
func (c *common) validate() ([]string, error) {
	var seeds []string
	for _, b := range strings.Split(c.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			seeds = append(seeds, b)
		}
	}
	if len(seeds) == 0 {
		return nil, usagef("--brokers is empty")
	}
	if c.timeout <= 0 {
		return nil, usagef("--timeout must be positive")
	}
	if c.sec != nil {
		if err := c.sec.Validate(); err != nil {
			return nil, usagef("%v", err)
		}
	}
	return seeds, nil
}

// connect builds the kadm client. Nothing is dialed yet: kgo connects on
// the first request, so unreachable brokers surface as that request's error.
func (c *common) connect() (*kadm.Client, func(), error) {
	seeds, err := c.validate()
	if err != nil {
		return nil, nil, err
	}
	dial := 10 * time.Second
	if c.timeout < dial {
		dial = c.timeout
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DialTimeout(dial),
		kgo.RetryTimeout(c.timeout),
		kgo.ClientID("vigil-admin"),
	}
	if c.sec != nil {
		// Files (password, token, certificates) are read here: one that
		// cannot be read fails the command (exit 1), not its usage.
		secOpts, err := c.sec.Opts()
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, secOpts...)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, usagef("brokers %q: %v", c.brokers, err)
	}
	adm := kadm.NewClient(cl)
	// Server-side timeouts (CreateTopics, DeleteTopics) follow --timeout so
	// the broker does not give up before the operator does.
	adm.SetTimeoutMillis(int32(min(c.timeout, time.Hour).Milliseconds()))
	return adm, cl.Close, nil
}

// explain turns transport failures into what an operator needs to hear:
// which brokers could not be reached, rather than a bare dial error.
func (c *common) explain(err error) error {
	if err == nil {
		return nil
	}
	if ne, ok := errors.AsType[*net.OpError](err); ok && ne.Op == "dial" {
		return fmt.Errorf("cannot reach brokers %s: %w", c.brokers, err)
	}
	if errors.Is(err, kerr.SaslAuthenticationFailed) {
		return fmt.Errorf("brokers %s refused the SASL credentials (check --sasl-username, --sasl-mechanism and the password): %w", c.brokers, err)
	}
	if errors.Is(err, kerr.ClusterAuthorizationFailed) {
		return fmt.Errorf("%w (only a super user, or a principal an ACL on --cluster allows, may do this)", err)
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return fmt.Errorf("the brokers' certificate is not signed by a CA of --tls-ca (or the system's): %w", err)
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return fmt.Errorf("the brokers' certificate is not for the host dialed (--tls-server-name names another): %w", err)
	}
	if strings.Contains(err.Error(), "tls: certificate required") {
		return fmt.Errorf("the listener wants a client certificate (--tls-cert and --tls-key): %w", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from brokers %s within --timeout %s (does --security-protocol %s match the listener?): %w", c.brokers, c.timeout, c.protocol(), err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("brokers %s closed the connection (does --security-protocol %s match the listener?): %w", c.brokers, c.protocol(), err)
	}
	return err
}

func (c *common) protocol() string {
	if c.sec == nil {
		return "PLAINTEXT"
	}
	return c.sec.Protocol
}

// Main runs `vigil topics|groups|cluster|users|acls ...` (args[0] names
// which) and returns the process exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdin == nil {
		env.Stdin = os.Stdin
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, "Usage: vigil topics|groups|cluster|users|acls SUBCOMMAND [flags] (vigil COMMAND -h for each)\n")
		return ExitUsage
	}
	var cmds map[string]subcommand
	var usage string
	switch args[0] {
	case "topics":
		cmds, usage = topicCommands(), topicsUsage
	case "groups":
		cmds, usage = groupCommands(), groupsUsage
	case "cluster":
		cmds, usage = clusterCommands(), clusterUsage
	case "users":
		cmds, usage = userCommands(), usersUsage
	case "acls":
		cmds, usage = aclCommands(), aclsUsage
	default:
		fmt.Fprintf(env.Stderr, "vigil: unknown command %q\n", args[0])
		return ExitUsage
	}
	name := "vigil " + args[0]
	if len(args) < 2 {
		fmt.Fprint(env.Stderr, usage)
		return ExitUsage
	}
	switch args[1] {
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, usage)
		return ExitOK
	}
	sub, ok := cmds[args[1]]
	if !ok {
		fmt.Fprintf(env.Stderr, "%s: unknown subcommand %q\n\n%s", name, args[1], usage)
		return ExitUsage
	}
	name += " " + args[1]

	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage:\n  %s %s\n\nFlags:\n", name, sub.args)
		fs.PrintDefaults()
	}
	var c common
	c.register(fs, env.Getenv)
	runFn := sub.setup(fs)
	pos, err := parseInterspersed(fs, args[2:])
	if ok, code := cliflag.Report(fs, err, env.Stderr); !ok {
		return code
	}
	if _, err := c.validate(); err != nil {
		cliflag.Errorf(env.Stderr, name, "%v", err)
		return ExitUsage
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err = runFn(ctx, &invocation{common: c, pos: pos, out: newPrinter(env.Stdout, c.json), stdin: env.Stdin, stderr: env.Stderr})
	var ue *usageError
	var fe *failedError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		cliflag.Errorf(env.Stderr, name, "%v", err)
		return ExitUsage
	case errors.As(err, &fe):
		fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
		return ExitFailed
	default:
		fmt.Fprintf(env.Stderr, "%s: %v\n", name, c.explain(err))
		return ExitFailed
	}
}

// subcommand registers its own flags on the shared flag set and returns the
// function that runs once the command line has been parsed.
type subcommand struct {
	args  string // positional arguments, for the usage line
	setup func(fs *flag.FlagSet) func(ctx context.Context, inv *invocation) error
}

// invocation is one parsed command line.
type invocation struct {
	common
	pos    []string
	out    *printer
	stdin  io.Reader
	stderr io.Writer
}

// admin connects and hands the client to fn, closing it afterwards.
func (inv *invocation) admin(fn func(adm *kadm.Client) error) error {
	adm, closeFn, err := inv.connect()
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(adm)
}
