// Package cliflag parses a command's flags the way every vigil command
// reports them: -h prints the flags, and a bad flag prints one line with
// a hint instead of the whole usage (the flag package's own output) and
// then the error again (the caller's).
package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ExitUsage is the exit status of a command line that could not be parsed.
const ExitUsage = 2

// Parse parses args into fs, which must have been built with
// flag.ContinueOnError. ok reports whether the command should go on; when
// it should not, code is its exit status: 0 after -h (fs.Usage was
// called), ExitUsage after a bad flag (one line on stderr).
func Parse(fs *flag.FlagSet, args []string, stderr io.Writer) (ok bool, code int) {
	err := ParseOnly(fs, args)
	return Report(fs, err, stderr)
}

// ParseOnly parses args into fs without printing anything, so a caller
// that parses in steps (flags after positional arguments) can report once.
func ParseOnly(fs *flag.FlagSet, args []string) error {
	usage, out := fs.Usage, fs.Output()
	// The flag package prints the error and the whole usage itself before
	// returning it; both are silenced and restored for -h.
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = usage; fs.SetOutput(out) }()
	return fs.Parse(args)
}

// Report turns a parse error into the command's outcome, as Parse does.
func Report(fs *flag.FlagSet, err error, stderr io.Writer) (ok bool, code int) {
	switch {
	case err == nil:
		return true, 0
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return false, 0
	default:
		Errorf(stderr, fs.Name(), "%v", err)
		return false, ExitUsage
	}
}

// Errorf prints one usage error of the command name, with the hint where
// its flags are described.
func Errorf(stderr io.Writer, name, format string, args ...any) {
	fmt.Fprintf(stderr, "%s: %s (run '%s -h' for the flags)\n", name, fmt.Sprintf(format, args...), name)
}

// SubcommandHelp handles a command with subcommands called with none, or
// with -h, --help or help: the usage goes to stdout when asked for (exit
// 0), to stderr when the subcommand is missing (ExitUsage). ok reports
// whether args name a subcommand to run.
func SubcommandHelp(args []string, usage string, stdout, stderr io.Writer) (ok bool, code int) {
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, usage)
		return false, ExitUsage
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Fprint(stdout, usage)
		return false, 0
	}
	return true, 0
}
