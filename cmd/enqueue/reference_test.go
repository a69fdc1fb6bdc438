package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refreshq/refreshq/tasks"
)

// docs/reference.md lists every provider's enqueue command as -h shows
// it, so a provider added to tasks' table shows up there too.
func TestReferenceNamesEveryProviderCommand(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range tasks.Commands() {
		row := "| `enqueue " + c.Name + " " + c.Synopsis() + " [common flags]` |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/reference.md has no row %s in its enqueue table", row)
		}
	}
}
