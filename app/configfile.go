package app

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bfbridge/bfbridge/internal/suggest"
)

// This file reads the configuration file so that a mistake is reported in the reader's words,
// at the line it is on: the file is parsed into yaml.v3 nodes (which keep their positions) and
// walked against the document's shape before anything is decoded, so that an unknown key comes
// with the key the reader most likely meant, a bad value names its setting and says what was
// expected, and a mis-indented key is reported on its own line rather than on the line where
// the parser gave up. Only then is the tree decoded into the sections.

// fileError is one mistake in the configuration file, at a line.
type fileError struct {
	line int
	msg  string
}

// fileErrors are the mistakes of one file, in the order of their lines.
type fileErrors struct {
	path string
	errs []fileError
}

func (e *fileErrors) Error() string {
	lines := make([]string, len(e.errs))
	for i, fe := range e.errs {
		lines[i] = fmt.Sprintf("config %s: line %d: %s", e.path, fe.line, fe.msg)
	}
	return strings.Join(lines, "\n")
}

func (e *fileErrors) add(line int, format string, args ...any) {
	e.errs = append(e.errs, fileError{line, fmt.Sprintf(format, args...)})
}

// parseFile parses b into a node tree and checks it against d; the error lists every mistake.
func parseFile(path string, b []byte, d *document) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, syntaxError(path, b, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, nil // an empty file (or only comments): the defaults
	}
	errs := &fileErrors{path: path}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		errs.add(top.Line, "the file must be a mapping of settings (key: value), such as \"listen: 127.0.0.1:8080\"")
		return nil, errs
	}
	c := checker{errs: errs, root: d}
	c.document(top, "", d)
	if len(errs.errs) > 0 {
		slices.SortStableFunc(errs.errs, func(a, b fileError) int { return a.line - b.line })
		return nil, errs
	}
	return top, nil
}

// checker walks the node tree against the document's shape.
type checker struct {
	errs *fileErrors
	root *document
}

// document checks a mapping at path whose shape is d: its children and its inline structs' keys.
func (c checker) document(n *yaml.Node, path string, d *document) {
	if !c.isMapping(n, path) {
		return
	}
	keys := map[string]reflect.Type{}
	for _, p := range d.inline {
		keysOf(reflect.TypeOf(p), keys)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if child, ok := d.children[k.Value]; ok {
			c.document(v, p, child)
			continue
		}
		t, ok := keys[k.Value]
		if !ok {
			c.unknown(k, path, append(slices.Collect(mapKeys(keys)), d.keys...))
			continue
		}
		c.value(v, p, t)
	}
}

// value checks the value at path, which decodes into a t.
func (c checker) value(n *yaml.Node, path string, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode || isNull(n) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return // yaml resolves aliases; null leaves the default; a type of its own reads itself
	}
	switch {
	case t == durationType:
		if _, err := time.ParseDuration(n.Value); n.Kind != yaml.ScalarNode || err != nil {
			c.errs.add(n.Line, "%s: %s is not a duration (write it like 30s, 5m or 1h30m)", path, shown(n))
		}
	case t.Kind() == reflect.Struct:
		if !c.isMapping(n, path) {
			return
		}
		keys := map[string]reflect.Type{}
		keysOf(t, keys)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if ft, ok := keys[k.Value]; ok {
				c.value(v, join(path, k.Value), ft)
			} else {
				c.unknown(k, path, slices.Collect(mapKeys(keys)))
			}
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		if n.Kind != yaml.SequenceNode {
			c.errs.add(n.Line, "%s: %s is not a list (write it as [a, b] or one \"- item\" a line)", path, shown(n))
			return
		}
		for i, e := range n.Content {
			c.value(e, fmt.Sprintf("%s[%d]", path, i), t.Elem())
		}
	case t.Kind() == reflect.Map:
		if c.isMapping(n, path) {
			for i := 1; i < len(n.Content); i += 2 {
				c.value(n.Content[i], join(path, n.Content[i-1].Value), t.Elem())
			}
		}
	default:
		c.scalar(n, path, t)
	}
}

// scalar checks a value of a basic type by decoding it, and says in words what was expected.
func (c checker) scalar(n *yaml.Node, path string, t reflect.Type) {
	if n.Kind != yaml.ScalarNode {
		c.errs.add(n.Line, "%s: expected %s, not a %s", path, kindWords(t), nodeWords(n))
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		c.errs.add(n.Line, "%s: %s is not %s", path, shown(n), kindWords(t))
	}
}

// isMapping reports whether n is a mapping, and says so when it is not.
func (c checker) isMapping(n *yaml.Node, path string) bool {
	if n.Kind == yaml.MappingNode || isNull(n) {
		return n.Kind == yaml.MappingNode
	}
	c.errs.add(n.Line, "%s: expected its settings on the lines below it, indented (key: value), not %s", path, shown(n))
	return false
}

// unknown reports key k in the mapping at path, which knows keys, with the one most likely
// meant: a near spelling among keys, else the same key where it belongs elsewhere in the file
// (a key mis-indented out of its section, or into another).
func (c checker) unknown(k *yaml.Node, path string, keys []string) {
	slices.Sort(keys)
	where := ""
	if path != "" {
		where = " in " + path + ":"
	}
	msg := fmt.Sprintf("unknown key %q%s", k.Value, where)
	if s := suggest.Closest(k.Value, keys); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else if elsewhere := c.root.pathsOf(k.Value, ""); len(elsewhere) > 0 {
		msg += ` (did you mean "` + strings.Join(elsewhere, `" or "`) + `"? check its indentation)`
	}
	c.errs.add(k.Line, "%s", msg)
}

// pathsOf returns the dotted paths under d at which key is a setting or a section.
func (d *document) pathsOf(key, path string) []string {
	var out []string
	keys := map[string]reflect.Type{}
	for _, p := range d.inline {
		keysOf(reflect.TypeOf(p), keys)
	}
	if _, ok := keys[key]; ok {
		out = append(out, join(path, key))
	}
	for _, k := range d.keys {
		if k == key && path != "" {
			out = append(out, join(path, k))
		}
		out = append(out, d.children[k].pathsOf(key, join(path, k))...)
	}
	return out
}

// keysOf adds the yaml keys of struct type t (or a pointer to one), with the type each
// decodes into, following inline fields.
func keysOf(t reflect.Type, into map[string]reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case !f.IsExported() || name == "-":
		case strings.Contains(opts, "inline"):
			keysOf(f.Type, into)
		case name == "":
			into[strings.ToLower(f.Name)] = f.Type // yaml.v3's default key
		default:
			into[name] = f.Type
		}
	}
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// isNull reports whether n is an empty value (key with nothing after it, ~ or null).
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// shown is a value as the message quotes it: a scalar in quotes, else what kind of value it is.
func shown(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return strconv.Quote(n.Value)
	}
	return "a " + nodeWords(n)
}

func nodeWords(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping (key: value lines)"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// kindWords names what a value of t is, for a reader.
func kindWords(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a text value"
	}
	return "a " + t.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func mapKeys(m map[string]reflect.Type) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// syntaxError is the parser's error with the line of the mistake: when a key is indented
// where no mapping is open, yaml.v3 reports the line before it (where it stopped expecting a
// key), so the indentation is read here to point at the key itself.
func syntaxError(path string, b []byte, err error) error {
	if line, msg := misindented(string(b)); line > 0 {
		return &fileErrors{path: path, errs: []fileError{{line, msg}}}
	}
	return fmt.Errorf("config %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
}

// misindented finds the first key whose indentation matches no mapping open above it: one of
// its enclosing mappings' own, or deeper after a key that opens a block. It gives up (0) on
// what it does not follow: lists, block scalars, flow collections and tabs; the parser's own
// message stands then.
func misindented(text string) (line int, msg string) {
	open := []int{0} // indentation of the mappings open at this point, outermost first
	opens := false   // the previous key has no value on its line: a block may follow
	prev := ""       // the previous key
	for i, l := range strings.Split(text, "\n") {
		body := strings.TrimLeft(l, " ")
		if body == "" || body[0] == '#' {
			continue
		}
		if strings.ContainsAny(body[:1], "-[{|>\t") || strings.HasPrefix(l, "\t") || strings.HasSuffix(strings.TrimSpace(body), "|") || strings.HasSuffix(strings.TrimSpace(body), ">") {
			return 0, ""
		}
		indent := len(l) - len(body)
		key, rest, isKey := strings.Cut(body, ":")
		if !isKey {
			return 0, ""
		}
		top := open[len(open)-1]
		switch {
		case opens && indent > top:
			open = append(open, indent)
		case indent > top:
			return i + 1, fmt.Sprintf("key %q is indented %s, deeper than %q above it, whose value is already on its line (indent it like the keys it belongs with)", strings.TrimSpace(key), spaces(indent), prev)
		default:
			for len(open) > 1 && indent < open[len(open)-1] {
				open = open[:len(open)-1]
			}
			if indent != open[len(open)-1] {
				return i + 1, fmt.Sprintf("key %q is indented %s, which lines it up with no section above it (indent it like the keys it belongs with: %s)", strings.TrimSpace(key), spaces(indent), indents(open, top))
			}
		}
		rest, _, _ = strings.Cut(rest, " #")
		opens, prev = strings.TrimSpace(rest) == "", strings.TrimSpace(key)
	}
	return 0, ""
}

// indents says which indentations were open, for the message.
func indents(open []int, top int) string {
	var words []string
	for _, n := range append(open, top) {
		w := spaces(n)
		if !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	return strings.Join(words, " or ")
}

// spaces is an indentation in words.
func spaces(n int) string {
	if n == 1 {
		return "1 space"
	}
	return strconv.Itoa(n) + " spaces"
}
