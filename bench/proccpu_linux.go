package bench

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// procCPU is the CPU time (user + system) process pid has used, from
// /proc/PID/stat; ok is false if it cannot be read. The kernel counts it in clock
// ticks, 100 a second on every Linux this runs on (USER_HZ).
func procCPU(pid int) (cpu time.Duration, ok bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: the fields
	// counted from after its closing parenthesis start at state (3).
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * (time.Second / 100), true
}
