// Package envtag sets struct fields from environment variables named in their `env` tags:
//
//	AppID string `yaml:"app_id" env:"BRIDGE_OMNICHANNEL_APP_ID"`
//
// so that an override is declared beside the field it overrides. Nested and embedded structs
// are walked; string (and string-kinded), bool, integer, float and time.Duration fields are
// supported.
package envtag

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

var durationType = reflect.TypeFor[time.Duration]()

// Apply sets every tagged field of *ptr whose variable getenv returns non-empty.
func Apply(ptr any, getenv func(string) string) error {
	var firstErr error
	walk(reflect.ValueOf(ptr), func(name string, f reflect.Value) bool {
		if v := getenv(name); v != "" {
			if err := set(f, v); err != nil {
				firstErr = fmt.Errorf("%s: %w", name, err)
				return false
			}
		}
		return true
	})
	return firstErr
}

// Set sets the field of *ptr tagged name to value. It reports whether such a field exists.
func Set(ptr any, name, value string) (bool, error) {
	found := false
	var err error
	walk(reflect.ValueOf(ptr), func(n string, f reflect.Value) bool {
		if n != name {
			return true
		}
		found = true
		if err = set(f, value); err != nil {
			err = fmt.Errorf("%s: %w", name, err)
		}
		return false
	})
	return found, err
}

// Names returns the variable names tagged in *ptr, in field order.
func Names(ptr any) []string {
	var names []string
	walk(reflect.ValueOf(ptr), func(n string, _ reflect.Value) bool {
		names = append(names, n)
		return true
	})
	return names
}

// walk calls visit with each tagged, settable field under v until visit returns false.
func walk(v reflect.Value, visit func(name string, f reflect.Value) bool) bool {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return true
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return true
	}
	t := v.Type()
	for i := range t.NumField() {
		sf, f := t.Field(i), v.Field(i)
		if !sf.IsExported() {
			continue
		}
		if name := sf.Tag.Get("env"); name != "" {
			if !visit(name, f) {
				return false
			}
			continue
		}
		if k := sf.Type.Kind(); (k == reflect.Struct || k == reflect.Pointer) && sf.Type != durationType {
			if !walk(f, visit) {
				return false
			}
		}
	}
	return true
}

// set parses s into f by f's kind.
func set(f reflect.Value, s string) error {
	if f.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration: %w", err)
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not true or false: %w", err)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("not an integer: %w", err)
		}
		f.SetInt(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("not a number: %w", err)
		}
		f.SetFloat(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("fields of type %s cannot be set from the environment", f.Type())
		}
		var items []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		f.Set(reflect.ValueOf(items).Convert(f.Type()))
	default:
		return fmt.Errorf("fields of type %s cannot be set from the environment", f.Type())
	}
	return nil
}
