package poll

import (
	"testing"
	"time"
)

// every is how often cond is asked: often enough that a test waits little
// past the moment cond holds, seldom enough that asking (a Redis call, a
// browser script) does not load the machine.
const every = 20 * time.Millisecond

// Holds asks cond until it holds, true, or timeout passes, false.
func Holds(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}

// Until asks cond until it holds, and fails the test, naming what it
// waited for, when timeout passes first.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Holds(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}
