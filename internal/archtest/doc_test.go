package archtest

import (
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestPublicDocNamesNoInternalPackage fails when what `go doc` shows of a
// public package names a package of internal/: an exported constant or
// variable whose initialiser is one (go doc prints it), or a doc comment
// that sends the reader to one. Outside code can neither import nor read
// it there.
func TestPublicDocNamesNoInternalPackage(t *testing.T) {
	var names []string
	for _, p := range list(t, "./...") {
		if isInternal(p.ImportPath) {
			names = append(names, path.Base(p.ImportPath))
		}
	}
	if len(names) == 0 {
		t.Fatal("no internal package found: the check would pass on anything")
	}
	for _, p := range list(t, public...) {
		if len(p.GoFiles) == 0 {
			t.Fatalf("%s has no Go files", p.ImportPath)
		}
		fset := token.NewFileSet()
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		for _, v := range docMentions(t, fset, p.ImportPath, files, names) {
			t.Errorf("%s: %s", p.ImportPath, v)
		}
	}
}

// docMentions lists what go doc shows of the package made of files that
// names an internal package: a selector on an internal import in an
// exported const or var declaration, and "internal/" or pkg.Name (pkg one
// of internalNames) in a doc comment.
func docMentions(t *testing.T, fset *token.FileSet, importPath string, files []*ast.File, internalNames []string) []string {
	t.Helper()
	imported := map[string]string{} // local name → internal import path
	for _, f := range files {
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil || !isInternal(p) {
				continue
			}
			name := path.Base(p)
			if imp.Name != nil {
				name = imp.Name.Name
			}
			imported[name] = p
		}
	}
	dp, err := doc.NewFromFiles(fset, files, importPath)
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`internal/|\b(` + strings.Join(internalNames, "|") + `)\.[A-Z]`)
	var out []string
	text := func(where, s string) {
		if m := refs.FindString(s); m != "" {
			out = append(out, fmt.Sprintf("the doc of %s names %q", where, m))
		}
	}
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			text(strings.Join(v.Names, ", "), v.Doc)
			ast.Inspect(v.Decl, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && imported[x.Name] != "" {
					out = append(out, fmt.Sprintf("%s is declared with %s.%s, of %s", strings.Join(v.Names, ", "), x.Name, sel.Sel.Name, imported[x.Name]))
				}
				return true
			})
		}
	}
	funcs := func(prefix string, fs []*doc.Func) {
		for _, f := range fs {
			text(prefix+f.Name, f.Doc)
		}
	}
	text("the package", dp.Doc)
	values(dp.Consts)
	values(dp.Vars)
	funcs("", dp.Funcs)
	for _, ty := range dp.Types {
		text(ty.Name, ty.Doc)
		values(ty.Consts)
		values(ty.Vars)
		funcs("", ty.Funcs)
		funcs(ty.Name+".", ty.Methods)
	}
	slices.Sort(out)
	return out
}

// TestDocMentionsFindsInternalPackages proves the check can fail: each
// way a doc can name an internal package is reported, and the same names
// kept unexported or in plain words are not.
func TestDocMentionsFindsInternalPackages(t *testing.T) {
	src := `// Package pub wraps the limiter (see internal/ratelimit).
package pub

import (
	"time"

	"` + module + `/internal/ratelimit"
	rl "` + module + `/internal/ratelimit"
)

// DefaultMax is the longest pause.
const DefaultMax = ratelimit.DefaultHintMax

// Hint is what rl.Hint says.
var Hint = rl.New()

// Fine is a literal; the ratelimit package keeps its own.
const Fine = time.Hour

const hidden = ratelimit.DefaultHintMax

// Run runs until retry.LaterError says otherwise.
func Run() {}

// T is a type.
type T struct{}

// M reads the ledger.
func (T) M() {}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "pub.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	got := docMentions(t, fset, module+"/pub", []*ast.File{f}, []string{"ratelimit", "retry", "ledger", "rl"})
	want := []string{
		`DefaultMax is declared with ratelimit.DefaultHintMax, of ` + module + `/internal/ratelimit`,
		`Hint is declared with rl.New, of ` + module + `/internal/ratelimit`,
		`the doc of Hint names "rl.H"`,
		`the doc of Run names "retry.L"`,
		`the doc of the package names "internal/"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("docMentions =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
