//go:build !linux

package faulttest

import "syscall"

// sysProcAttr: the tests that run processes are skipped off Linux.
func sysProcAttr() *syscall.SysProcAttr { return nil }
