package results

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// docs/reference.md names every stream field and every error kind this
// package defines, so consumers can rely on the list there.
func TestReferenceNamesEveryFieldAndKind(t *testing.T) {
	doc, err := os.ReadFile("../docs/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "entry.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if (!strings.HasPrefix(name.Name, "Field") && !strings.HasPrefix(name.Name, "Kind")) || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				if v == "" {
					continue // KindNone
				}
				n++
				if !strings.Contains(string(doc), "`"+v+"`") {
					t.Errorf("docs/reference.md does not name %s (%q)", name.Name, v)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d fields and kinds in entry.go", n)
	}
}
