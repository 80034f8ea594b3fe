package api

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// schemaReflector writes JSON Schema 2020-12 (what OpenAPI 3.1 uses) for
// Go types by reading them as encoding/json does, so the schemas of
// openapi.json cannot say something other than what the server encodes
// and decodes:
//
//   - a field is required unless omitempty/omitzero can leave it out (in
//     answers; requests require nothing: the server's decoder leaves a
//     missing field zero);
//   - a slice, map or pointer without omitempty may be null (Go encodes
//     a nil one as null);
//   - structs have additionalProperties false (the server sends nothing
//     else, and refuses unknown request fields);
//   - embedded structs are inlined, as encoding/json does;
//   - descriptions are the Go doc comments of the types and fields.
//
// A type with its own MarshalJSON (other than the few mapped below) is
// refused: its JSON is not what its fields say.
type schemaReflector struct {
	// defs are the components, by name.
	defs map[string]map[string]any
	// requests: reflect request bodies (nothing required) under names
	// with the suffix "Input" when answers already use the plain name.
	requests bool
	// answers are the names the answers' pass defined.
	answers map[string]bool
	docs    *goDocs
	err     error
}

func newSchemaReflector(docs *goDocs) *schemaReflector {
	return &schemaReflector{defs: map[string]map[string]any{}, docs: docs}
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	digestType    = reflect.TypeFor[digest.Digest]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	bytesType     = reflect.TypeFor[[]byte]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

// digestPattern is go-digest's grammar of a digest (algorithm:encoded).
const digestPattern = `^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`

// ref returns the schema of t: a $ref for named structs (defined once in
// defs), inline for the rest.
func (r *schemaReflector) schema(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case digestType:
		return map[string]any{"$ref": "#/components/schemas/Digest"}
	case rawType:
		// Any JSON value; what it holds is said on the field.
		return map[string]any{}
	case bytesType:
		return map[string]any{"type": "string", "contentEncoding": "base64"}
	}
	if t.Kind() == reflect.Pointer {
		return r.schema(t.Elem())
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) {
		r.fail(fmt.Errorf("%s has its own MarshalJSON: map it in schemaReflector.schema", t))
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return map[string]any{"type": "integer", "format": "int32"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": r.schema(t.Elem())}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			r.fail(fmt.Errorf("%s: only maps with string keys are JSON objects", t))
		}
		return map[string]any{"type": "object", "additionalProperties": r.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := r.name(t)
		if _, ok := r.defs[name]; !ok {
			r.defs[name] = nil // placeholder: recursion stops here
			r.defs[name] = r.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	r.fail(fmt.Errorf("%s: no JSON Schema for kind %s", t, t.Kind()))
	return map[string]any{}
}

func (r *schemaReflector) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// name is the component name of a struct type: its Go name for the API's
// own types (api/wire), the package's name first for documents other
// packages own (ProvenanceDocument, AuditlogRecord), the type argument
// appended for generic ones (MaintenanceEventFsckSummary), "Input" for
// request bodies whose plain name an answer uses.
func (r *schemaReflector) name(t reflect.Type) string {
	base, arg, _ := strings.Cut(t.Name(), "[")
	if arg != "" {
		arg = strings.TrimSuffix(arg, "]")
		base += arg[strings.LastIndex(arg, ".")+1:]
	}
	if pkg := filepath.Base(t.PkgPath()); pkg != "wire" {
		base = strings.ToUpper(pkg[:1]) + pkg[1:] + base
	}
	if r.requests && r.answers[base] {
		base += "Input"
	}
	return base
}

// object is the schema of a struct: its fields as encoding/json sees
// them.
func (r *schemaReflector) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var add func(t reflect.Type, optional bool)
	add = func(t reflect.Type, optional bool) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			omit := strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
			ft := f.Type
			if f.Anonymous && name == "" {
				embedded := ft
				if embedded.Kind() == reflect.Pointer {
					embedded = embedded.Elem()
				}
				if embedded.Kind() == reflect.Struct {
					// A nil embedded pointer leaves its fields out.
					add(embedded, optional || ft.Kind() == reflect.Pointer)
					continue
				}
			}
			if strings.Contains(","+opts+",", ",string,") {
				r.fail(fmt.Errorf("%s.%s: the ,string option is not mapped", t, f.Name))
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := props[name]; dup {
				r.fail(fmt.Errorf("%s: two fields named %q", t, name))
			}
			s := r.schema(ft)
			// omitempty never leaves out a struct that is not a pointer.
			omittable := omit && !(ft.Kind() == reflect.Struct && !strings.Contains(opts, "omitzero"))
			if !omittable && nullable(ft) {
				s = orNull(s)
			}
			if !omittable && ft == digestType {
				// A digest not set yet goes out as "".
				s = map[string]any{"anyOf": []any{s, map[string]any{"const": ""}}}
			}
			if d := r.docs.field(t, f.Name); d != "" {
				s = withDescription(s, d)
			}
			props[name] = s
			if !optional && !omittable && !r.requests {
				required = append(required, name)
			}
		}
	}
	add(t, false)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		out["required"] = required
	}
	if d := r.docs.typ(t); d != "" {
		out["description"] = d
	}
	return out
}

// nullable: Go encodes a nil value of t as null.
func nullable(t reflect.Type) bool {
	if t == rawType {
		return false // any JSON value already
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return true
	}
	return false
}

// orNull lets s be null too.
func orNull(s map[string]any) map[string]any {
	if typ, ok := s["type"].(string); ok {
		out := clone(s)
		out["type"] = []any{typ, "null"}
		return out
	}
	if len(s) == 0 {
		return s
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

// withDescription adds a description; beside a $ref it goes on an allOf
// wrapper-free schema (2020-12 allows siblings of $ref).
func withDescription(s map[string]any, d string) map[string]any {
	out := clone(s)
	out["description"] = d
	return out
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// goDocs holds the doc comments of the packages whose types are
// reflected, read from their source (go generate runs in the module).
type goDocs struct {
	root string // the module's directory
	// types and fields by "pkgpath.Type" and "pkgpath.Type.Field".
	text map[string]string
	read map[string]bool
	err  error
}

const modulePath = "github.com/dmlproject/dml"

func newGoDocs(root string) *goDocs {
	return &goDocs{root: root, text: map[string]string{}, read: map[string]bool{}}
}

func (d *goDocs) typ(t reflect.Type) string {
	base, _, _ := strings.Cut(t.Name(), "[")
	return d.lookup(t.PkgPath(), base)
}

func (d *goDocs) field(t reflect.Type, field string) string {
	base, _, _ := strings.Cut(t.Name(), "[")
	return d.lookup(t.PkgPath(), base+"."+field)
}

func (d *goDocs) lookup(pkg, key string) string {
	if !strings.HasPrefix(pkg, modulePath+"/") {
		return ""
	}
	if !d.read[pkg] {
		d.read[pkg] = true
		d.parse(pkg)
	}
	return d.text[pkg+"."+key]
}

// parse reads the comments of a package of the module.
func (d *goDocs) parse(pkg string) {
	dir := filepath.Join(d.root, filepath.FromSlash(strings.TrimPrefix(pkg, modulePath+"/")))
	entries, err := os.ReadDir(dir)
	if err != nil {
		d.err = err
		return
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			d.err = err
			return
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, spec := range g.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(g.Specs) == 1 {
					doc = g.Doc
				}
				d.text[pkg+"."+ts.Name.Name] = docText(doc)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, f := range st.Fields.List {
					c := f.Doc
					if c == nil {
						c = f.Comment
					}
					for _, n := range f.Names {
						d.text[pkg+"."+ts.Name.Name+"."+n.Name] = docText(c)
					}
				}
			}
		}
	}
}

// docText is a comment as one paragraph of text.
func docText(c *ast.CommentGroup) string {
	if c == nil {
		return ""
	}
	return strings.Join(strings.Fields(c.Text()), " ")
}
