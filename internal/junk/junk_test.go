package junk

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Every body is at least Size long, starts as its name says, and has a
// name of its own for the test log.
func TestBodies(t *testing.T) {
	seen := map[string]bool{}
	for _, b := range Bodies() {
		if len(b.Data) < Size {
			t.Errorf("%s: %d bytes, want at least %d", b.Name, len(b.Data), Size)
		}
		if seen[b.Name] {
			t.Errorf("two bodies named %q", b.Name)
		}
		seen[b.Name] = true
	}
	if got := Fill("[", "1,", "1]"); string(got[:3]) != "[1," || string(got[len(got)-3:]) != ",1]" {
		t.Errorf("Fill = %.3q…%q", got, got[len(got)-3:])
	}
}
