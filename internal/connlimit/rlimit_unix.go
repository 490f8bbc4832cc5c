//go:build unix

package connlimit

import "syscall"

// fileLimit returns the process's limit of open files (the soft limit,
// which Go raises to the hard limit at start), or 0 when it cannot tell.
func fileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
