package app

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var updateFieldDocs = flag.Bool("update-field-docs", false, "regenerate fielddocs_gen.go from the configuration structs' doc comments")

const modulePath = "github.com/bfbridge/bfbridge"

// TestFieldDocs checks that fielddocs_gen.go holds the doc comments of every field of the
// configuration's structs as the source has them now (or, with -update-field-docs, writes it).
func TestFieldDocs(t *testing.T) {
	want, err := sourceFieldDocs(Defaults())
	if err != nil {
		t.Fatal(err)
	}
	src := renderFieldDocs(want)
	if *updateFieldDocs {
		if err := os.WriteFile("fielddocs_gen.go", src, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for k, v := range want {
		if fieldDocs[k] != v {
			t.Errorf("fielddocs_gen.go is stale at %s:\n have %q\n want %q\nrun go generate ./app", k, fieldDocs[k], v)
		}
	}
	for k := range fieldDocs {
		if _, ok := want[k]; !ok {
			t.Errorf("fielddocs_gen.go has %s, which the configuration no longer has; run go generate ./app", k)
		}
	}
	have, err := os.ReadFile("fielddocs_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, src) {
		t.Error("fielddocs_gen.go is not what go generate ./app writes; run it")
	}
}

// sourceFieldDocs returns the one-line doc comment of every field of every struct type reached
// from c's file shape, keyed as fieldDoc looks them up, parsed from the packages' source.
func sourceFieldDocs(c Config) (map[string]string, error) {
	types := map[reflect.Type]bool{}
	var visit func(reflect.Type)
	visit = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType || types[t] || !strings.HasPrefix(t.PkgPath(), modulePath) {
			return
		}
		types[t] = true
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() || (sf.Tag.Get("yaml") == "-" && sf.Tag.Get("env") == "") {
				continue
			}
			visit(sf.Type)
		}
	}
	for _, p := range c.targets() {
		visit(reflect.TypeOf(p))
	}
	visit(reflect.TypeOf(c.Bot))

	files := map[string][]*ast.File{} // by package path
	docs := map[string]string{}
	for typ := range types {
		pkg := typ.PkgPath()
		if _, ok := files[pkg]; !ok {
			dir := filepath.Join("..", strings.TrimPrefix(strings.TrimPrefix(pkg, modulePath), "/"))
			names, err := filepath.Glob(filepath.Join(dir, "*.go"))
			if err != nil {
				return nil, err
			}
			fset := token.NewFileSet()
			for _, n := range names {
				if strings.HasSuffix(n, "_test.go") {
					continue
				}
				f, err := parser.ParseFile(fset, n, nil, parser.ParseComments)
				if err != nil {
					return nil, err
				}
				files[pkg] = append(files[pkg], f)
			}
		}
		st := findStruct(files[pkg], typ.Name())
		if st == nil {
			return nil, fmt.Errorf("no struct %s in %s", typ.Name(), pkg)
		}
		var prev *ast.CommentGroup
		for _, field := range st.Fields.List {
			doc := field.Doc
			if doc == nil { // the second of a pair documented together, as ReconnectMin and ReconnectMax
				doc = prev
			}
			prev = field.Doc
			sf, ok := typ.FieldByName(fieldName(field))
			if !ok || !sf.IsExported() || len(sf.Index) != 1 || sf.Anonymous {
				continue
			}
			if sf.Tag.Get("yaml") == "-" && sf.Tag.Get("env") == "" {
				continue
			}
			for _, n := range field.Names {
				docs[pkg+"."+typ.Name()+"."+n.Name] = oneLine(doc.Text())
			}
		}
	}
	return docs, nil
}

// fieldName returns the first name a field declaration declares (its type's, embedded).
func fieldName(f *ast.Field) string {
	if len(f.Names) > 0 {
		return f.Names[0].Name
	}
	return ""
}

// findStruct returns the struct type name declares in files.
func findStruct(files []*ast.File, name string) *ast.StructType {
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range g.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.Name == name {
					st, _ := ts.Type.(*ast.StructType)
					return st
				}
			}
		}
	}
	return nil
}

var sentenceEnd = regexp.MustCompile(`\.\s+[A-Z0-9]`)

// oneLine shortens a doc comment to one line: its first sentence, and the sentence that states
// the default when that is another.
func oneLine(doc string) string {
	doc = strings.Join(strings.Fields(doc), " ")
	var sentences []string
	for doc != "" {
		loc := sentenceEnd.FindStringIndex(doc)
		if loc == nil || strings.HasSuffix(doc[:loc[0]], "e.g") || strings.HasSuffix(doc[:loc[0]], "i.e") {
			if loc != nil { // an abbreviation: look past it
				next := sentenceEnd.FindStringIndex(doc[loc[1]:])
				if next != nil {
					loc = []int{loc[1] + next[0], loc[1] + next[1]}
				} else {
					loc = nil
				}
			}
		}
		if loc == nil {
			sentences = append(sentences, doc)
			break
		}
		sentences = append(sentences, doc[:loc[0]+1])
		doc = doc[loc[1]-1:]
	}
	if len(sentences) == 0 {
		return ""
	}
	out := []string{sentences[0]}
	if !strings.Contains(sentences[0], "Default") {
		for _, s := range sentences[1:] {
			if strings.HasPrefix(s, "Default") || strings.HasPrefix(s, "Empty") || strings.HasPrefix(s, "0:") {
				out = append(out, s)
			}
		}
	}
	return strings.Join(out, " ")
}

// renderFieldDocs returns the Go source of fielddocs_gen.go.
func renderFieldDocs(docs map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString("// Code generated by go generate ./app (TestFieldDocs -update-field-docs); DO NOT EDIT.\n\n")
	b.WriteString("package app\n\n")
	b.WriteString("// fieldDocs holds the configuration structs' field doc comments, each in one line, by\n")
	b.WriteString("// package path, type and field: what bridge config defaults prints beside each key.\n")
	b.WriteString("var fieldDocs = map[string]string{\n")
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\t%q: %q,\n", k, docs[k])
	}
	b.WriteString("}\n")
	out, err := format.Source(b.Bytes())
	if err != nil {
		panic(err)
	}
	return out
}
