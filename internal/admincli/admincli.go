// Package admincli is the operator side of `vigil`: the `topics`,
// `groups` and `cluster` commands. They talk to the cluster only through franz-go's kadm,
// so they work against any Kafka-compatible cluster, and operators need no
// Java tools.
package admincli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// usageError is a mistake on the command line: exit 2 and show the usage.
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
}

func (c *common) register(fs *flag.FlagSet, getenv func(string) string) {
	def := DefaultBrokers
	if v := strings.TrimSpace(getenv("VIGIL_BROKERS")); v != "" {
		def = v
	}
	fs.StringVar(&c.brokers, "brokers", def, "comma-separated seed brokers (env VIGIL_BROKERS)")
	fs.BoolVar(&c.json, "json", false, "machine-readable JSON output instead of tables")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up on the whole operation after this long")
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
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.DialTimeout(dial),
		kgo.RetryTimeout(c.timeout),
		kgo.ClientID("vigil-admin"),
	)
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
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from brokers %s within --timeout %s: %w", c.brokers, c.timeout, err)
	}
	return err
}

// Main runs `vigil topics ...` or `vigil groups ...` (args[0] names which)
// and returns the process exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, topicsUsage, groupsUsage)
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
		fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
		return ExitUsage
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err = runFn(ctx, &invocation{common: c, pos: pos, out: newPrinter(env.Stdout, c.json)})
	var ue *usageError
	var fe *failedError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
		fs.Usage()
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
	pos []string
	out *printer
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
