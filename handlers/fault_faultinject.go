//go:build faultinject

package handlers

import (
	"os"
	"syscall"
)

// faultPoint is the crash point this process stops at, from
// REFRESHQ_FAULT. Only binaries built with -tags faultinject read it: the
// end-to-end tests use them to kill a worker at exactly the moment a
// kill -9 would be worst.
var faultPoint = os.Getenv("REFRESHQ_FAULT")

// fault kills the process with SIGKILL, as an OOM killer or kill -9 would
// (no deferred functions, no lease released), when point is faultPoint.
// The process dies the first time, so it crashes once; the test runs the
// re-run on a worker started without the variable.
func fault(point string) {
	if point != "" && point == faultPoint {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; run nothing more
	}
}
