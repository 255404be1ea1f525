package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vigilhq/vigil/internal/objstore/s3test"
)

// Binaries are the programs a campaign runs.
type Binaries struct {
	Vigil     string // brokers: the release code plus the clock hook
	Broken    string // the same with -tags chaosbroken (acknowledges before the WAL commit)
	Etcd      string // etcd v3.7.3, built from test/chaos/etcdserver
	Versitygw string
}

// The clock hook. Go reads the wall clock through the vDSO, not libc, so
// faketime (an LD_PRELOAD library) cannot move a Go program's clock, and
// CLOCK_REALTIME has no namespace. The brokers of a campaign are therefore
// built with a build-time overlay of the standard library's time.Now
// that adds an offset to the wall clock only (the monotonic reading that
// timers, leases and time.Since use is left alone, as a real clock step
// leaves CLOCK_MONOTONIC alone). The offset is read from the file
// $VIGIL_CHAOS_CLOCK_FILE, polled every 50 ms, and acknowledged in
// FILE.ack. No Vigil source file changes and no release build sees it:
// the overlay exists only in the harness's build directory.
const (
	clockAnchor  = "sec, nsec, mono := runtimeNow()"
	clockPatched = "sec, nsec, mono := runtimeNow(); sec, nsec = chaosShift(sec, nsec)"
)

const clockHook = `package time

import (
	"sync/atomic"
	"syscall"
)

// Added by the Vigil chaos harness's build overlay; never in a release.
var chaosOffset atomic.Int64

func init() {
	if path, ok := syscall.Getenv("VIGIL_CHAOS_CLOCK_FILE"); ok && path != "" {
		go chaosPoll(path)
	}
}

func chaosPoll(path string) {
	buf := make([]byte, 64)
	var last int64
	for {
		if fd, err := syscall.Open(path, syscall.O_RDONLY, 0); err == nil {
			n, _ := syscall.Read(fd, buf)
			syscall.Close(fd)
			if v, ok := chaosAtoi(buf[:max(n, 0)]); ok && v != last {
				chaosOffset.Store(v)
				last = v
				if fd, err := syscall.Open(path+".ack", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC, 0o644); err == nil {
					syscall.Write(fd, buf[:n])
					syscall.Close(fd)
				}
			}
		}
		Sleep(50 * Millisecond)
	}
}

func chaosAtoi(b []byte) (int64, bool) {
	neg, v, digits := false, int64(0), 0
	for i, c := range b {
		switch {
		case c == '-' && i == 0:
			neg = true
		case c >= '0' && c <= '9':
			v = v*10 + int64(c-'0')
			digits++
		case c == '\n' || c == ' ':
		default:
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	return v, digits > 0
}

func chaosShift(sec int64, nsec int32) (int64, int32) {
	off := chaosOffset.Load()
	if off == 0 {
		return sec, nsec
	}
	ns := int64(nsec) + off%1e9
	sec += off / 1e9
	for ns < 0 {
		ns += 1e9
		sec--
	}
	for ns >= 1e9 {
		ns -= 1e9
		sec++
	}
	return sec, int32(ns)
}
`

// build builds every binary into dir. root is the module root.
func build(root, dir string, logf func(string, ...any)) (Binaries, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, err
	}
	overlay, err := writeClockOverlay(dir)
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{Vigil: filepath.Join(dir, "vigil"), Broken: filepath.Join(dir, "vigil-broken"), Etcd: filepath.Join(dir, "etcd")}
	steps := []struct {
		what string
		dir  string
		args []string
	}{
		{"vigil (with the clock hook)", root, []string{"build", "-overlay", overlay, "-o", b.Vigil, "./cmd/vigil"}},
		{"vigil (broken: -tags chaosbroken)", root, []string{"build", "-tags", "chaosbroken", "-overlay", overlay, "-o", b.Broken, "./cmd/vigil"}},
		{"etcd v3.7.3", filepath.Join(root, "test", "chaos", "etcdserver"), []string{"build", "-o", b.Etcd, "."}},
	}
	for _, s := range steps {
		logf("building %s", s.what)
		cmd := exec.Command("go", s.args...)
		cmd.Dir = s.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("go %s: %v\n%s", strings.Join(s.args, " "), err, out)
		}
	}
	b.Versitygw = s3test.Binary()
	if b.Versitygw == "" {
		return Binaries{}, fmt.Errorf("versitygw not found on PATH or in $GOPATH/bin: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (.ci/install does)")
	}
	return b, nil
}

// writeClockOverlay writes the overlay of GOROOT/src/time and returns the
// overlay file's path.
func writeClockOverlay(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOROOT: %w", err)
	}
	timeDir := filepath.Join(strings.TrimSpace(string(out)), "src", "time")
	src, err := os.ReadFile(filepath.Join(timeDir, "time.go"))
	if err != nil {
		return "", err
	}
	if n := strings.Count(string(src), clockAnchor); n != 1 {
		return "", fmt.Errorf("clock hook: %q occurs %d times in %s/time.go (want 1): this Go release's time.Now changed; update test/chaos/build.go", clockAnchor, n, timeDir)
	}
	od := filepath.Join(dir, "overlay")
	if err := os.MkdirAll(od, 0o755); err != nil {
		return "", err
	}
	patched := filepath.Join(od, "time.go")
	hook := filepath.Join(od, "zz_chaos_clock.go")
	if err := os.WriteFile(patched, []byte(strings.Replace(string(src), clockAnchor, clockPatched, 1)), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(hook, []byte(clockHook), 0o644); err != nil {
		return "", err
	}
	raw, _ := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(timeDir, "time.go"):           patched,
		filepath.Join(timeDir, "zz_chaos_clock.go"): hook,
	}})
	file := filepath.Join(od, "overlay.json")
	return file, os.WriteFile(file, raw, 0o644)
}
