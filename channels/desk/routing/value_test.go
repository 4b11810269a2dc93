package routing

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValueAs(t *testing.T) {
	cases := []struct {
		name string
		in   Value
		to   Type
		want Value
		ok   bool
	}{
		{"string to string", String("x"), TypeString, String("x"), true},
		{"integer to string", Integer(101), TypeString, String("101"), true},
		{"number to string", Number(1.5), TypeString, String("1.5"), true},
		{"boolean to string", Boolean(true), TypeString, String("true"), true},
		{"integer to number", Integer(3), TypeNumber, Number(3), true},
		{"integral number to integer", Number(4), TypeInteger, Integer(4), true},
		{"fractional number to integer", Number(4.5), TypeInteger, Number(4.5), false},
		{"huge number to integer", Number(1e20), TypeInteger, Number(1e20), false},
		{"numeric text to integer", String(" 42 "), TypeInteger, Integer(42), true},
		{"text to integer", String("abc"), TypeInteger, String("abc"), false},
		{"numeric text to number", String("2.25"), TypeNumber, Number(2.25), true},
		{"infinite text to number", String("Inf"), TypeNumber, String("Inf"), false},
		{"text to number", String("x"), TypeNumber, String("x"), false},
		{"true text to boolean", String("TRUE"), TypeBoolean, Boolean(true), true},
		{"false text to boolean", String("false"), TypeBoolean, Boolean(false), true},
		{"yes to boolean", String("yes"), TypeBoolean, String("yes"), false},
		{"integer to boolean", Integer(1), TypeBoolean, Integer(1), false},
		{"boolean to integer", Boolean(true), TypeInteger, Boolean(true), false},
		{"zero to string", Value{}, TypeString, Value{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.in.As(tc.to)
			require.Equal(t, tc.ok, ok)
			require.True(t, tc.want.Equal(got), "got %#v", got)
		})
	}
}

func TestValueJSON(t *testing.T) {
	cases := []struct {
		name string
		v    Value
		json string
	}{
		{"string", String("Nurse"), `"Nurse"`},
		{"integer", Integer(-7), `-7`},
		{"integral number keeps its fraction", Number(2), `2.0`},
		{"number", Number(0.1), `0.1`},
		{"large number", Number(1e300), `1e+300`},
		{"boolean", Boolean(false), `false`},
		{"zero", Value{}, `null`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			require.NoError(t, err)
			require.JSONEq(t, tc.json, string(b))
			var back Value
			require.NoError(t, json.Unmarshal(b, &back))
			require.True(t, tc.v.Equal(back), "got %#v", back)
			require.Equal(t, tc.v.Type(), back.Type())
		})
	}
	t.Run("integer too large becomes a number", func(t *testing.T) {
		var v Value
		require.NoError(t, json.Unmarshal([]byte(`12345678901234567890`), &v))
		require.Equal(t, TypeNumber, v.Type())
	})
	for _, bad := range []string{`[1]`, `{"a":1}`, `nul`, `"unterminated`, `1e999`, ``} {
		t.Run("refuses "+bad, func(t *testing.T) {
			var v Value
			require.Error(t, v.UnmarshalJSON([]byte(bad)))
		})
	}
}

func TestValueAccessors(t *testing.T) {
	require.True(t, Number(math.NaN()).IsZero())
	require.True(t, Number(math.Inf(1)).IsZero())
	s, ok := String("a").Str()
	require.True(t, ok)
	require.Equal(t, "a", s)
	_, ok = Integer(1).Str()
	require.False(t, ok)
	f, ok := Integer(2).Float()
	require.True(t, ok)
	require.Equal(t, 2.0, f)
	_, ok = Boolean(true).Float()
	require.False(t, ok)
	b, ok := Boolean(true).Bool()
	require.True(t, ok && b)
	i, ok := Integer(9).Int()
	require.True(t, ok)
	require.EqualValues(t, 9, i)
	require.Equal(t, `routing.String("x")`, String("x").GoString())
	require.Equal(t, `routing.integer(3)`, Integer(3).GoString())
}
