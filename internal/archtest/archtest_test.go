package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const module = "github.com/refreshq/refreshq"

// public are the packages outside code may import: refreshq's Go API,
// and the harness its users test their mount with.
var public = []string{module + "/tasks", module + "/results", module + "/client", module + "/handlers", module + "/handlers/handlertest"}

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
	Export     string
	Standard   bool
}

// list runs go list over the module's packages (test files aside).
func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func ours(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

func isInternal(path string) bool {
	return ours(path) && (strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal"))
}

// TestImportRules holds the direction a payload travels, client → tasks →
// handlers → internal/clients → results: the contract packages stand alone,
// the producer and the runner do not know each other, and no package
// depends on a command.
func TestImportRules(t *testing.T) {
	pkgs := list(t, "./...")
	byPath := map[string]pkg{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	for _, standalone := range []string{"tasks", "results"} {
		p, ok := byPath[module+"/"+standalone]
		if !ok {
			t.Fatalf("package %s not found", standalone)
		}
		for _, d := range p.Deps {
			if ours(d) {
				t.Errorf("%s depends on %s: the contract packages import no other package of the module", standalone, d)
			}
		}
	}
	for _, pair := range [][2]string{{"client", "handlers"}, {"handlers", "client"}} {
		p, ok := byPath[module+"/"+pair[0]]
		if !ok {
			t.Fatalf("package %s not found", pair[0])
		}
		if slices.Contains(p.Deps, module+"/"+pair[1]) {
			t.Errorf("%s depends on %s: the producer and the handler must not know each other", pair[0], pair[1])
		}
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/cmd/") {
				t.Errorf("%s imports the command %s: commands are programs, not libraries", p.ImportPath, imp)
			}
		}
	}
}

// TestPublicAPINamesNoInternalType fails when an exported identifier of a
// public package (a function, a method, a field of an exported struct, a
// type, a variable) mentions a type from internal/: code outside the
// module could not use it.
func TestPublicAPINamesNoInternalType(t *testing.T) {
	exports := map[string]string{}
	for _, p := range list(t, append([]string{"-export", "-deps"}, public...)...) {
		if p.Export != "" {
			exports[p.ImportPath] = p.Export
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	for _, path := range public {
		tp, err := imp.Import(path)
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		for _, v := range internalMentions(tp) {
			t.Errorf("%s: %s", path, v)
		}
	}
}

// internalMentions lists every exported API element of p whose type
// mentions a type from an internal package.
func internalMentions(p *types.Package) []string {
	var out []string
	scope := p.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		w := walker{pkg: p, seen: map[types.Type]bool{}}
		w.walk(obj.Type(), name)
		out = append(out, w.found...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// walker follows a type through what an importer of its package can
// reach: exported fields and methods, parameters, results, elements.
type walker struct {
	pkg   *types.Package
	seen  map[types.Type]bool // the package's named types already followed
	found []string
}

func (w *walker) walk(t types.Type, where string) {
	switch t := t.(type) {
	case *types.Alias:
		w.named(t.Obj(), where)
		w.walk(types.Unalias(t), where)
	case *types.Named:
		w.named(t.Obj(), where)
		for a := range t.TypeArgs().Types() {
			w.walk(a, where)
		}
		// Types of other packages are their packages' concern; this
		// package's own types are part of its API, followed once each (a
		// type may refer to itself), with every mention on the way reported.
		if t.Obj().Pkg() == w.pkg && !w.seen[t] {
			w.seen[t] = true
			w.walk(t.Underlying(), where)
			for m := range t.Methods() {
				if m.Exported() {
					w.walk(m.Type(), where+"."+m.Name())
				}
			}
		}
	case *types.Pointer:
		w.walk(t.Elem(), where)
	case *types.Slice:
		w.walk(t.Elem(), where)
	case *types.Array:
		w.walk(t.Elem(), where)
	case *types.Map:
		w.walk(t.Key(), where)
		w.walk(t.Elem(), where)
	case *types.Chan:
		w.walk(t.Elem(), where)
	case *types.Signature:
		for v := range t.Params().Variables() {
			w.walk(v.Type(), where)
		}
		for v := range t.Results().Variables() {
			w.walk(v.Type(), where)
		}
	case *types.Struct:
		for f := range t.Fields() {
			if f.Exported() || f.Embedded() {
				w.walk(f.Type(), where+"."+f.Name())
			}
		}
	case *types.Interface:
		for m := range t.Methods() {
			if m.Exported() {
				w.walk(m.Type(), where+"."+m.Name())
			}
		}
		for e := range t.EmbeddedTypes() {
			w.walk(e, where)
		}
	}
}

func (w *walker) named(obj *types.TypeName, where string) {
	if obj.Pkg() != nil && isInternal(obj.Pkg().Path()) {
		w.found = append(w.found, fmt.Sprintf("%s mentions %s.%s", where, obj.Pkg().Path(), obj.Name()))
	}
}

// TestWalkerFindsInternalTypes proves the check can fail: a package whose
// exported field, method parameter or method result is an internal type is
// reported, and one that keeps it unexported is not.
func TestWalkerFindsInternalTypes(t *testing.T) {
	internalPkg := types.NewPackage(module+"/internal/x", "x")
	secret := types.NewTypeName(token.NoPos, internalPkg, "Secret", nil)
	secretT := types.NewNamed(secret, types.NewStruct(nil, nil), nil)

	pub := types.NewPackage(module+"/pub", "pub")
	field := types.NewField(token.NoPos, pub, "Dep", types.NewPointer(secretT), false)
	opts := types.NewTypeName(token.NoPos, pub, "Options", nil)
	types.NewNamed(opts, types.NewStruct([]*types.Var{field}, nil), nil)
	pub.Scope().Insert(opts)
	hidden := types.NewField(token.NoPos, pub, "dep", secretT, false)
	ok := types.NewTypeName(token.NoPos, pub, "Fine", nil)
	types.NewNamed(ok, types.NewStruct([]*types.Var{hidden}, nil), nil)
	pub.Scope().Insert(ok)

	// Svc's methods take and give the internal type; unexported ones may.
	svc := types.NewTypeName(token.NoPos, pub, "Svc", nil)
	svcT := types.NewNamed(svc, types.NewStruct(nil, nil), nil)
	recv := types.NewVar(token.NoPos, pub, "s", svcT)
	method := func(name string, params, results []*types.Var) {
		sig := types.NewSignatureType(recv, nil, nil, types.NewTuple(params...), types.NewTuple(results...), false)
		svcT.AddMethod(types.NewFunc(token.NoPos, pub, name, sig))
	}
	method("Take", []*types.Var{types.NewParam(token.NoPos, pub, "s", types.NewPointer(secretT))}, nil)
	method("Give", nil, []*types.Var{types.NewParam(token.NoPos, pub, "", types.NewSlice(secretT))})
	method("keep", []*types.Var{types.NewParam(token.NoPos, pub, "s", secretT)}, nil)
	pub.Scope().Insert(svc)

	got := internalMentions(pub)
	slices.Sort(got)
	want := []string{
		"Options.Dep mentions " + module + "/internal/x.Secret",
		"Svc.Give mentions " + module + "/internal/x.Secret",
		"Svc.Take mentions " + module + "/internal/x.Secret",
	}
	if !slices.Equal(got, want) {
		t.Errorf("internalMentions =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
