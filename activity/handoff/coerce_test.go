package handoff

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCoerceOmnichannel(t *testing.T) {
	long := strings.Repeat("a", 4001)
	emoji := strings.Repeat("é", 3999) + "😀" // 3,999 + 2 UTF-16 units: the pair does not fit
	for _, tc := range []struct {
		name   string
		in     string
		number []string
		want   string
		codes  map[string]NoteCode
	}{
		{"string and integer kept", `{"BotHandoffTopic":"CreditCard","IDNumber":101}`, nil,
			`{"BotHandoffTopic":"CreditCard","IDNumber":101}`, nil},
		{"names kept case-exact", `{"Email":"a","email":"b"}`, nil, `{"Email":"a","email":"b"}`, nil},
		{"integral numbers become integers", `{"a":2.0,"b":1e3,"c":-5E1}`, nil, `{"a":2,"b":1000,"c":-50}`,
			map[string]NoteCode{"a": NoteCoerced, "b": NoteCoerced, "c": NoteCoerced}},
		{"fractions and huge numbers become strings", `{"a":0.75,"b":1e400,"c":99999999999999999999}`, nil,
			`{"a":"0.75","b":"1e400","c":"99999999999999999999"}`,
			map[string]NoteCode{"a": NoteCoerced, "b": NoteCoerced, "c": NoteCoerced}},
		{"booleans become strings", `{"a":true,"b":false}`, nil, `{"a":"true","b":"false"}`,
			map[string]NoteCode{"a": NoteCoerced, "b": NoteCoerced}},
		{"booleans become 1 and 0 for Number variables", `{"a":true,"b":false}`, []string{"a", "b"}, `{"a":1,"b":0}`,
			map[string]NoteCode{"a": NoteCoerced, "b": NoteCoerced}},
		{"integer strings become integers for Number variables", `{"a":"42","b":"4.2","c":"42"}`, []string{"a", "b"},
			`{"a":42,"b":"4.2","c":"42"}`, map[string]NoteCode{"a": NoteCoerced}},
		{"scalar arrays are joined", `{"va_Topics":["Store hours","Returns"],"m":[1,true,"x",2.5],"e":[]}`, nil,
			`{"va_Topics":"Store hours, Returns","m":"1, true, x, 2.5","e":""}`,
			map[string]NoteCode{"va_Topics": NoteCoerced, "m": NoteCoerced, "e": NoteCoerced}},
		{"nested arrays and objects become JSON text", `{"a":[[1],{"b":2}],"o":{"city":"Oslo"},"n":[null]}`, nil,
			`{"a":"[[1],{\"b\":2}]","o":"{\"city\":\"Oslo\"}","n":"[null]"}`,
			map[string]NoteCode{"a": NoteCoerced, "o": NoteCoerced, "n": NoteCoerced}},
		{"null is dropped", `{"a":null,"b":"x"}`, nil, `{"b":"x"}`, map[string]NoteCode{"a": NoteDropped}},
		{"empty name is dropped", `{"":"x"}`, nil, `{}`, map[string]NoteCode{"": NoteDropped}},
		{"name over 100 characters is dropped", `{"` + strings.Repeat("n", 101) + `":"x","` + strings.Repeat("m", 100) + `":"y"}`, nil,
			`{"` + strings.Repeat("m", 100) + `":"y"}`, map[string]NoteCode{strings.Repeat("n", 101): NoteDropped}},
		{"value over 4,000 characters is cut", `{"a":"` + long + `"}`, nil, `{"a":"` + long[:4000] + `"}`,
			map[string]NoteCode{"a": NoteTruncated}},
		{"a cut never splits a surrogate pair", `{"a":"` + emoji + `"}`, nil, `{"a":"` + strings.Repeat("é", 3999) + `"}`,
			map[string]NoteCode{"a": NoteTruncated}},
		{"a joined array over the limit is cut too", `{"a":["` + long + `"]}`, nil, `{"a":"` + long[:4000] + `"}`,
			map[string]NoteCode{"a": NoteTruncated}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars, err := ParseVariables([]byte(tc.in))
			require.NoError(t, err)
			before, _ := json.Marshal(vars)
			got, notes := CoerceOmnichannel(vars, CoerceOptions{NumberVariables: tc.number})
			b, err := json.Marshal(got)
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(b))
			after, _ := json.Marshal(vars)
			require.Equal(t, string(before), string(after), "the input is not modified")
			codes := map[string]NoteCode{}
			for _, n := range notes {
				name := strings.TrimPrefix(n.Path, "context.")
				if _, seen := codes[name]; !seen || n.Code == NoteTruncated {
					codes[name] = n.Code
				}
			}
			if tc.codes == nil {
				tc.codes = map[string]NoteCode{}
			}
			require.Equal(t, tc.codes, codes, "%v", notes)
			for name, v := range got {
				require.Contains(t, []Kind{KindString, KindInteger}, v.Kind(), name)
			}
			again, more := CoerceOmnichannel(got, CoerceOptions{NumberVariables: tc.number})
			require.True(t, got.Equal(again), "coercion is idempotent")
			require.Empty(t, more)
		})
	}
}

func TestUTF16Helpers(t *testing.T) {
	require.Equal(t, 3, utf16Len("abc"))
	require.Equal(t, 2, utf16Len("😀"))
	require.Equal(t, 1, utf16Len("\xff"), "an invalid byte counts as U+FFFD")
	s, cut := truncateUTF16("ab😀c", 3)
	require.True(t, cut)
	require.Equal(t, "ab", s)
	s, cut = truncateUTF16("ab😀c", 5)
	require.False(t, cut)
	require.Equal(t, "ab😀c", s)
}
