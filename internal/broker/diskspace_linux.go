package broker

import "golang.org/x/sys/unix"

// diskSpace is the size and the space free to unprivileged users of the
// filesystem holding path, or -1 and -1.
func diskSpace(path string) (total, usable int64) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return -1, -1
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize
}
