//go:build !unix

package scorecard

import "errors"

var errNoSignals = errors.New("the failure recovery probe signals processes, which this operating system does not offer")

func checkProcess(int) (string, error) { return "", errNoSignals }

const (
	sigStop = "SIGSTOP"
	sigCont = "SIGCONT"
	sigKill = "SIGKILL"
)

func sendSignal(int, string) error { return errNoSignals }
