package poll

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHolds(t *testing.T) {
	n := 0
	if !Holds(time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Errorf("Holds asked %d times, want true on the 3rd", n)
	}
	start := time.Now()
	if Holds(50*time.Millisecond, func() bool { return false }) {
		t.Error("Holds = true for a condition that never holds")
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("Holds gave up after %s, want at least the 50ms timeout", waited)
	}
}
