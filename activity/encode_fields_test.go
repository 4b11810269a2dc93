package activity

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// filled returns a value of type t with every exported field set (recursively, to depth), so
// that a field the hand-written encoder does not write shows up as a difference from the
// reflection path. Extra members are left out: TestFastEncoderShapes covers them.
func filled(t reflect.Type, depth int) reflect.Value {
	v := reflect.New(t).Elem()
	switch {
	case t == reflect.TypeFor[json.RawMessage]():
		v.Set(reflect.ValueOf(json.RawMessage(`{"k":[1,"<x>"]}`)))
		return v
	case t == reflect.TypeFor[Time]():
		v.Set(reflect.ValueOf(NewTime(time.Date(2026, 12, 6, 12, 0, 0, 5, time.UTC))))
		return v
	case t == reflect.TypeFor[Extra]():
		return v
	}
	switch t.Kind() {
	case reflect.String:
		v.SetString("s<" + strings.ToLower(t.Name()) + ">")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(7)
	case reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Pointer:
		if depth > 0 {
			v.Set(filled(t.Elem(), depth-1).Addr())
		}
	case reflect.Slice:
		if depth > 0 {
			s := reflect.MakeSlice(t, 1, 1)
			s.Index(0).Set(filled(t.Elem(), depth-1))
			v.Set(s)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				v.Field(i).Set(filled(f.Type, depth))
			}
		}
	}
	return v
}

// TestFastEncoderWritesEveryField: an Activity with every field set encodes as the reflection
// path encodes it, and every field's JSON name is in the output. A field added to Activity (or
// to an account) and not to the hand-written encoder fails here.
func TestFastEncoderWritesEveryField(t *testing.T) {
	a := filled(reflect.TypeFor[Activity](), 3).Addr().Interface().(*Activity)
	requireSameEncoding(t, a)
	b, err := Marshal(a)
	require.NoError(t, err)
	at := reflect.TypeFor[Activity]()
	for i := range at.NumField() {
		name, _, _ := strings.Cut(at.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		require.Contains(t, string(b), `"`+name+`":`, "field %s", at.Field(i).Name)
	}
	for _, acc := range []any{a.From, a.Conversation} {
		fast, err := json.Marshal(acc)
		require.NoError(t, err)
		reflectOnly.Store(true)
		slow, err := json.Marshal(acc)
		reflectOnly.Store(false)
		require.NoError(t, err)
		require.Equal(t, string(slow), string(fast))
	}
}
