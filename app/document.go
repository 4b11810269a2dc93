package app

import (
	"fmt"
	"reflect"
	"strings"
)

// document is the shape of the configuration file, built from the core settings and the
// registered sections: one mapping per key, into which the values at that key decode inline.
// "bot" holds the Hub's bot settings and the botframework section side by side, and the
// bot.directline section under them. Decoding a file into document's value fills the sections
// in place, in one pass, so that yaml reports unknown keys and bad values with their line.
type document struct {
	inline   []any // pointers to structs decoded at this key
	keys     []string
	children map[string]*document
}

// at returns the mapping at a dotted path, making it on first use.
func (d *document) at(path string) *document {
	if path == "" {
		return d
	}
	key, rest, _ := strings.Cut(path, ".")
	if d.children == nil {
		d.children = map[string]*document{}
	}
	c, ok := d.children[key]
	if !ok {
		c = &document{}
		d.children[key] = c
		d.keys = append(d.keys, key)
	}
	return c.at(rest)
}

// value returns a pointer to a struct whose fields point at the inline values and children,
// tagged for yaml.
func (d *document) value() any {
	var fields []reflect.StructField
	var values []reflect.Value
	for i, p := range d.inline {
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("Inline%d", i), Type: reflect.TypeOf(p), Tag: `yaml:",inline"`})
		values = append(values, reflect.ValueOf(p))
	}
	for i, k := range d.keys {
		v := reflect.ValueOf(d.children[k].value())
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("Key%d", i), Type: v.Type(), Tag: reflect.StructTag(`yaml:"` + k + `"`)})
		values = append(values, v)
	}
	p := reflect.New(reflect.StructOf(fields))
	for i, v := range values {
		p.Elem().Field(i).Set(v)
	}
	return p.Interface()
}
