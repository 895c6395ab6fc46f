package faulttest

import "syscall"

// sysProcAttr makes the kernel kill a subprocess when the test process
// dies, so that a test binary killed by its timeout leaves nothing behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
