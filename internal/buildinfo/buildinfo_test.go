package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestReadNamesTheBuild(t *testing.T) {
	i := Read()
	if i.Version == "" || i.Revision == "" || i.GoVersion != runtime.Version() {
		t.Errorf("Read() = %+v: every field must be set, Go %s", i, runtime.Version())
	}
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.8.7"
	if got := Read().String(); !strings.HasPrefix(got, "v9.8.7 (revision ") || !strings.Contains(got, runtime.Version()) {
		t.Errorf("String() = %q, want the linker's version, the revision and Go's", got)
	}
}
