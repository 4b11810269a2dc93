package handoff

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseValueKinds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind Kind
		text string
		out  string // the JSON written back; in when empty
	}{
		{`"CreditCard"`, KindString, "CreditCard", ""},
		{`""`, KindString, "", ""},
		{`101`, KindInteger, "101", ""},
		{`-7`, KindInteger, "-7", ""},
		{`-0`, KindInteger, "0", "0"},
		{`2.0`, KindNumber, "2.0", ""},
		{`0.75`, KindNumber, "0.75", ""},
		{`1e3`, KindNumber, "1e3", ""},
		{`123456789012345678901234`, KindNumber, "123456789012345678901234", ""},
		{`true`, KindBoolean, "true", ""},
		{`false`, KindBoolean, "false", ""},
		{`null`, KindNull, "", ""},
		{`["a", 1]`, KindJSON, `["a",1]`, `["a",1]`},
		{` {"b": {"c": null}} `, KindJSON, `{"b":{"c":null}}`, `{"b":{"c":null}}`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			v, err := ParseValue([]byte(tc.in))
			require.NoError(t, err)
			require.Equal(t, tc.kind, v.Kind())
			require.Equal(t, tc.text, v.String())
			want := tc.out
			if want == "" {
				want = tc.in
			}
			require.Equal(t, want, string(v.Raw()))
			back, err := ParseValue(v.Raw())
			require.NoError(t, err)
			require.True(t, v.Equal(back))
		})
	}
}

func TestParseValueErrors(t *testing.T) {
	for _, in := range []string{``, `nul`, `"open`, `[1,`, `01`, `tru`, `+1`} {
		t.Run(in, func(t *testing.T) {
			_, err := ParseValue([]byte(in))
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), "handoff: value: "), err.Error())
		})
	}
}

func TestValueConstructors(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    Value
		kind Kind
		raw  string
	}{
		{"string", String("x"), KindString, `"x"`},
		{"string keeps html", String("<b>&</b>"), KindString, `"<b>&</b>"`},
		{"integer", Integer(42), KindInteger, `42`},
		{"integral number stays a number", Number(2), KindNumber, `2.0`},
		{"fraction", Number(1.5), KindNumber, `1.5`},
		{"exponent", Number(1e21), KindNumber, `1e+21`},
		{"nan is null", Number(math.NaN()), KindNull, `null`},
		{"infinity is null", Number(math.Inf(1)), KindNull, `null`},
		{"boolean", Boolean(true), KindBoolean, `true`},
		{"null", Null(), KindNull, `null`},
		{"zero value is null", Value{}, KindNull, `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.kind, tc.v.Kind())
			require.Equal(t, tc.raw, string(tc.v.Raw()))
			back, err := ParseValue(tc.v.Raw())
			require.NoError(t, err)
			require.True(t, tc.v.Equal(back) || tc.kind == KindNull)
		})
	}
}

func TestValueAccessors(t *testing.T) {
	s, ok := String("a").Str()
	require.True(t, ok)
	require.Equal(t, "a", s)
	_, ok = Integer(1).Str()
	require.False(t, ok)
	i, ok := Integer(5).Int()
	require.True(t, ok)
	require.EqualValues(t, 5, i)
	f, ok := Integer(5).Float()
	require.True(t, ok)
	require.InDelta(t, 5.0, f, 0)
	f, ok = Number(2.5).Float()
	require.True(t, ok)
	require.InDelta(t, 2.5, f, 0)
	_, ok = String("2.5").Float()
	require.False(t, ok)
	b, ok := Boolean(true).Bool()
	require.True(t, ok && b)
	lit, ok := Number(0.5).Literal()
	require.True(t, ok)
	require.Equal(t, "0.5", lit)
	require.False(t, Integer(1).Equal(Number(1)), "kinds differ")
	require.False(t, String("1").Equal(Integer(1)))
}

func TestVariablesKeepNamesAndTypes(t *testing.T) {
	vars, err := ParseVariables([]byte(`{"Email":"A","email":"b","IDNumber":101,"IDText":"101","Flag":true,"Score":1.0}`))
	require.NoError(t, err)
	require.Equal(t, []string{"Email", "Flag", "IDNumber", "IDText", "Score", "email"}, vars.Names())
	require.Equal(t, KindInteger, vars["IDNumber"].Kind())
	require.Equal(t, KindString, vars["IDText"].Kind())
	require.Equal(t, KindNumber, vars["Score"].Kind())
	b, err := json.Marshal(vars)
	require.NoError(t, err)
	require.JSONEq(t, `{"Email":"A","email":"b","IDNumber":101,"IDText":"101","Flag":true,"Score":1.0}`, string(b))
	require.Contains(t, string(b), `"Score":1.0`)

	_, err = ParseVariables([]byte(`["not", "an", "object"]`))
	require.ErrorIs(t, err, errNotObject)
	empty, err := ParseVariables([]byte(`{}`))
	require.NoError(t, err)
	require.Nil(t, empty)
	require.True(t, empty.Equal(Variables{}))
	require.False(t, vars.Equal(empty))
}
