package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// version prints what the binary was built from: the module version, the
// VCS commit (with "+dirty" for uncommitted changes) and time, and the Go
// version. `go build` in a git checkout records the commit; `go run` and
// builds outside a checkout leave it unknown.
func version(stdout io.Writer) int {
	fmt.Fprintln(stdout, versionLine(debug.ReadBuildInfo()))
	return 0
}

func versionLine(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "vigil (no build information)"
	}
	ver, commit, when, dirty := bi.Main.Version, "unknown", "", false
	if ver == "" {
		ver = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		commit += "+dirty"
	}
	line := fmt.Sprintf("vigil %s commit %s", ver, commit)
	if when != "" {
		line += " (" + when + ")"
	}
	return line + " " + bi.GoVersion
}
