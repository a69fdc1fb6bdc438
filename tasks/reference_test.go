package tasks_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refreshq/refreshq/tasks"
)

// docs/reference.md's `enqueue file` row names every key a file line may
// carry, since any other key is an error.
func TestReferenceNamesEveryInputField(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `enqueue file ") {
			row = line
		}
	}
	if row == "" {
		t.Fatal("docs/reference.md has no `enqueue file` row")
	}
	for _, key := range tasks.InputFields() {
		if !strings.Contains(row, "`"+key+"`") && !strings.Contains(row, `"`+key+`"`) {
			t.Errorf("docs/reference.md's `enqueue file` row does not name the key %s", key)
		}
	}
}
