package app

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:generate go test -run ^TestFieldDocs$ -update-field-docs

// The one-line comments of `bridge config defaults` come from the doc comments of the
// configuration's struct fields. A binary has no doc comments, so fieldDocs
// (fielddocs_gen.go) holds them: generated from the source by TestFieldDocs with
// -update-field-docs (go generate ./app), and checked against the source by the same test
// without it, so that it fails when a field or its comment changes and the file was not
// regenerated.

// Reference returns c as a YAML configuration file with every key the file accepts, in the
// file's shape (core settings, bot:, each registered channel's section), each with its value in
// c and a comment: the field's doc comment in one line and the environment variable that
// overrides it. Secrets are left empty: their comment names the variable to set them with.
// Variables that set what the file has no key for are listed as comments. What it returns loads
// with LoadFile.
func (c *Config) Reference() ([]byte, error) {
	sections := map[string][]string{}
	for _, r := range c.regs {
		sections[r.Section] = append(sections[r.Section], r.Name+" ("+r.Role.String()+")")
	}
	root, err := c.document().node("", sections)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# bfbridge configuration: every key with its default (bridge config defaults).\n")
	b.WriteString("# Flags win over the environment, which wins over this file. Secrets belong in the environment.\n")
	b.WriteString("# A key with no value takes the default its comment states.\n\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// node renders the mapping at path: the fields of its inline values, then its children.
func (d *document) node(path string, sections map[string][]string) (*yaml.Node, error) {
	m := &mapping{node: &yaml.Node{Kind: yaml.MappingNode}}
	for _, p := range d.inline {
		if err := m.fields(reflect.ValueOf(p).Elem()); err != nil {
			return nil, err
		}
	}
	for _, k := range d.keys {
		p := k
		if path != "" {
			p = path + "." + k
		}
		v, err := d.children[k].node(p, sections)
		if err != nil {
			return nil, err
		}
		comment := "core settings"
		if names := sections[p]; len(names) > 0 {
			comment = "the section of the channel(s) " + strings.Join(names, ", ")
		}
		if p == "bot" {
			comment = "the bot as the Hub sees it; " + comment
		}
		m.add(k, comment, v)
	}
	m.flush()
	return m.node, nil
}

// mapping is a mapping node being filled, with comments waiting for the next key.
type mapping struct {
	node    *yaml.Node
	pending []string
}

// add appends key: value with its comment (and any waiting ones) above it.
func (m *mapping) add(key, comment string, value *yaml.Node) {
	lines := append(m.pending, comment)
	m.pending = nil
	m.node.Content = append(m.node.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, HeadComment: strings.Join(lines, "\n")},
		value)
}

// flush puts the comments still waiting under the mapping's last key.
func (m *mapping) flush() {
	if len(m.pending) == 0 {
		return
	}
	if n := len(m.node.Content); n > 0 {
		m.node.Content[n-2].FootComment = strings.Join(m.pending, "\n")
	}
	m.pending = nil
}

var durationType = reflect.TypeFor[time.Duration]()

// fields adds the yaml fields of the struct v.
func (m *mapping) fields(v reflect.Value) error {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	t := v.Type()
	for i := range t.NumField() {
		sf, f := t.Field(i), v.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		env := sf.Tag.Get("env")
		doc := fieldDoc(t, sf.Name)
		if name == "-" {
			if env != "" {
				m.pending = append(m.pending, fmt.Sprintf("(no key: environment only) %s. %s", env, doc))
			}
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			if err := m.fields(f); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		comment := doc
		switch {
		case isSecret(name, env):
			comment = strings.TrimSpace(comment + " Secret: left empty here; set it with " + env + ".")
		case env != "":
			comment = strings.TrimSpace(comment + " Env " + env + ".")
		}
		var value *yaml.Node
		switch ft := sf.Type; {
		case isSecret(name, env):
			value = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}
		case f.IsZero() && (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map || (ft.Kind() != reflect.Bool && strings.Contains(doc, "Default"))):
			// unset: the default is the one the comment states (a channel fills it in when it is
			// built); a list stays nil, not empty, as a channel may tell the two apart
			value = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
		case ft.Kind() == reflect.Struct && ft != durationType:
			sub := &mapping{node: &yaml.Node{Kind: yaml.MappingNode}}
			if err := sub.fields(f); err != nil {
				return err
			}
			sub.flush()
			value = sub.node
		default:
			value = new(yaml.Node)
			if err := value.Encode(f.Interface()); err != nil {
				return fmt.Errorf("config: %s: %w", name, err)
			}
			if ft.Kind() == reflect.String {
				value.Value = redactURL(value.Value)
			}
		}
		if comment == "" {
			comment = "(undocumented)"
		}
		m.add(name, comment, value)
	}
	return nil
}

// isSecret reports whether the key (or the variable env) holds a secret, which the reference
// leaves empty: a secret, a password or a token (admin_token), by name.
func isSecret(key, env string) bool {
	for _, s := range []string{"secret", "password", "token"} {
		if key == s || strings.HasSuffix(key, "_"+s) || strings.HasSuffix(env, "_"+strings.ToUpper(s)) {
			return true
		}
	}
	return false
}

// redactURL returns s with the password of a URL's user info (redis://user:password@host)
// replaced by xxxxx.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	return u.Redacted()
}

// fieldDoc returns the one-line doc comment of t's field, from fieldDocs.
func fieldDoc(t reflect.Type, field string) string {
	return fieldDocs[t.PkgPath()+"."+t.Name()+"."+field]
}
