package runner

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	v, err := decodeJSON([]byte(s))
	require.NoError(t, err, s)
	return v
}

func TestMatch(t *testing.T) {
	vars := map[string]string{"conv": "c1", "user": "u1"}
	tests := []struct {
		name      string
		want, got string
		diff      string // "" when they match; else a part of the first difference
		req       string // the requirement the difference names
	}{
		{"subset of an object", `{"a": 1}`, `{"a": 1, "b": 2}`, "", ""},
		{"missing member", `{"a": 1}`, `{"b": 2}`, "a: expected 1, got nothing", ""},
		{"numbers by value", `{"n": 1500}`, `{"n": 1.5e3}`, "", ""},
		{"null is a value", `{"n": null}`, `{"n": null}`, "", ""},
		{"array length", `[1, 2]`, `[1, 2, 3]`, "expected 2 elements, got 3", ""},
		{"array with more", `["{{more}}", {"id": "u1"}]`, `[{"id": "bot"}, {"id": "u1", "name": "x"}]`, "", ""},
		{"array with more, missing", `["{{more}}", {"id": "u2"}]`, `[{"id": "bot"}]`, "expected element 0", ""},
		{"any", `{"a": "{{any}}"}`, `{"a": null}`, "", ""},
		{"any needs presence", `{"a": "{{any}}"}`, `{}`, "a: expected {{any}}, got nothing", ""},
		{"absent", `{"a": "{{absent}}"}`, `{}`, "", ""},
		{"absent but present", `{"a": "{{absent}}"}`, `{"a": 1}`, "expected no value", ""},
		{"string", `"{{string}}"`, `""`, "non-empty string", ""},
		{"number", `"{{number}}"`, `"5"`, "expected a number", ""},
		{"conv and user", `{"c": "{{conv}}", "u": "{{user}}"}`, `{"c": "c1", "u": "u1"}`, "", ""},
		{"interpolated", `"{{conv}}|0000001"`, `"c1|0000001"`, "", ""},
		{"seqid", `"{{seqid}}"`, `"c1|0000012"`, "", ""},
		{"seqid of another form", `"{{seqid}}"`, `"c1|12"`, "{conversationId}|0000000", "DL7"},
		{"timestamp", `"{{timestamp}}"`, `"2024-01-02T03:04:05.123Z"`, "", ""},
		{"timestamp with an offset", `"{{timestamp}}"`, `"2024-01-02T03:04:05-07:00"`, "UTC time ending in Z", "A2043"},
		{"url", `"{{url}}"`, `"https://x.example/"`, "", ""},
		{"url relative", `"{{url}}"`, `"/v3/x"`, "absolute", ""},
		{"wsurl", `"{{wsurl}}"`, `"wss://x.example/stream?t=1"`, "", ""},
		{"wsurl of http", `"{{wsurl}}"`, `"https://x.example/"`, "absolute", ""},
		{"jwt", `"{{jwt}}"`, `"eyJhbGciOiJIUzI1NiJ9.eyJjb252IjoiYzEifQ.c2ln"`, "", ""},
		{"not a jwt", `"{{jwt}}"`, `"opaque"`, "expected a JWT", "DL3"},
		{"not", `{"s": "{{not https://evil/}}"}`, `{}`, "", ""},
		{"not, equal", `{"s": "{{not https://evil/}}"}`, `{"s": "https://evil/"}`, "anything but", ""},
		{"kind and not", `"{{id:x not client-id}}"`, `"client-id"`, "anything but", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			diffs := newMatcher(vars).try("", mustJSON(t, tc.want), mustJSON(t, tc.got))
			if tc.diff == "" {
				require.Empty(t, diffs)
				return
			}
			require.NotEmpty(t, diffs)
			require.Contains(t, diffs[0].String(), tc.diff)
			require.Equal(t, tc.req, diffs[0].Req)
		})
	}
}

func TestBindings(t *testing.T) {
	m := newMatcher(nil)
	require.Empty(t, m.try("", mustJSON(t, `{"id": "{{id:p}}"}`), mustJSON(t, `{"id": "x|1"}`)))
	require.Empty(t, m.try("", mustJSON(t, `{"replyToId": "{{id:p}}"}`), mustJSON(t, `{"replyToId": "x|1"}`)))
	diffs := m.try("", mustJSON(t, `{"replyToId": "{{id:p}}"}`), mustJSON(t, `{"replyToId": "x|2"}`))
	require.Len(t, diffs, 1)
	require.Contains(t, diffs[0].Msg, `as p was first`)
	// a failed try keeps no bindings
	require.NotEmpty(t, m.try("", mustJSON(t, `{"a": "{{string:q}}", "b": 1}`), mustJSON(t, `{"a": "v", "b": 2}`)))
	require.Empty(t, m.try("", mustJSON(t, `"{{string:q}}"`), mustJSON(t, `"w"`)))
	// bound strings are usable in a "not"
	require.NotEmpty(t, m.try("", mustJSON(t, `"{{string not {{q}}}}"`), mustJSON(t, `"w"`)))
}

func TestMatchList(t *testing.T) {
	acts := mustJSON(t, `[{"id": "1", "text": "a"}, {"id": "2", "text": "b"}, {"id": "3", "text": "c"}]`).([]any)
	tests := []struct {
		mode, want string
		ok         bool
	}{
		{"ordered", `[{"text": "a"}, {"text": "c"}]`, true},
		{"ordered", `[{"text": "c"}, {"text": "a"}]`, false},
		{"unordered", `[{"text": "c"}, {"text": "a"}]`, true},
		{"exactly", `[{"text": "a"}, {"text": "c"}]`, false},
		{"exactly", `[{"text": "a"}, {"text": "b"}, {"text": "c"}]`, true},
		{"unordered", `[{"text": "a"}, {"text": "a"}]`, false},
	}
	for _, tc := range tests {
		t.Run(tc.mode+" "+tc.want, func(t *testing.T) {
			diffs := matchList(newMatcher(nil), tc.mode, mustJSON(t, tc.want).([]any), acts)
			require.Equal(t, tc.ok, len(diffs) == 0, "%v", diffs)
		})
	}
	diffs := matchList(newMatcher(nil), "ordered", mustJSON(t, `[{"text": "b", "x": 1}]`).([]any), acts)
	require.Len(t, diffs, 1)
	require.Contains(t, diffs[0].Msg, "the closest, #2, differs: x: expected 1, got nothing")
}

func TestIDInvariant(t *testing.T) {
	acts := mustJSON(t, `[{"id": "a"}, {"type": "message"}, {"id": "a"}]`).([]any)
	diffs := idInvariant(acts)
	require.Len(t, diffs, 2)
	require.Equal(t, "A2030", diffs[0].Req)
	require.Contains(t, diffs[0].Msg, "#2 (message) has no id")
	require.True(t, strings.Contains(diffs[1].Msg, "#1 and #3 share the id"))
}

func TestHeaderMatches(t *testing.T) {
	tests := []struct {
		want string
		got  []string
		ok   bool
	}{
		{"*", []string{"*"}, true},
		{"{{any}}", nil, false},
		{"{{absent}}", nil, true},
		{"{{includes Authorization, x-ms-bot-agent}}", []string{"authorization, content-type, X-MS-Bot-Agent"}, true},
		{"{{includes Authorization, x-ms-bot-agent}}", []string{"Content-Type"}, false},
		{"{{includes Authorization}}", []string{"*"}, true},
	}
	for _, tc := range tests {
		require.Equal(t, tc.ok, headerMatches(tc.want, tc.got), "%s vs %v", tc.want, tc.got)
	}
}
