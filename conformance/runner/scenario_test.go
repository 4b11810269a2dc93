package runner

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

const sample = `# a comment
title: A sample
requirement: DL8 echo
requirement: A2030
bridge-config: token_ttl=2s
user: u-1

> bot on {"type": "message", "text": "hi there"} status=500 delay=10ms
{"type": "message", "text": "one"}
{"type": "message",
 "text": "two"}

> customer start as=s
> customer request GET /session/getsessionid auth=none as=r
X-Test: yes
> customer post as=p
{"type": "message", "text": "hi there"}
----------
< response p req=DL8
status: 200 201
Content-Type: {{any}}
{"id": "{{id:p}}"}

< customer sees exactly
{"id": "{{id:p}}"}

< bot receives unordered
< stream s1
`

func TestParse(t *testing.T) {
	// "< stream s1" needs a stream step: the sample gets one.
	src := strings.Replace(sample, "> customer post as=p", "> customer stream as=s1\n> customer post as=p", 1)
	s, err := Parse("dir/sample.scenario", []byte(src))
	require.NoError(t, err)
	require.Equal(t, "sample", s.Name, "the file name names it")
	require.Equal(t, "A sample", s.Title)
	require.Equal(t, []string{"DL8", "A2030"}, s.Requirements)
	require.Equal(t, "echo", s.Titles["DL8"])
	require.Equal(t, map[string]string{"token_ttl": "2s"}, s.BridgeConfig)
	require.Equal(t, "u-1", s.User)
	require.True(t, s.NeedsBot)

	require.Len(t, s.Rules, 1)
	require.Equal(t, 500, s.Rules[0].Status)
	require.Len(t, s.Rules[0].Replies, 2)
	require.Equal(t, map[string]any{"type": "message", "text": "hi there"}, s.Rules[0].Trigger)

	require.Len(t, s.Steps, 4)
	require.Equal(t, "request", s.Steps[1].Action)
	require.Equal(t, []string{"GET", "/session/getsessionid"}, s.Steps[1].Pos)
	require.Equal(t, [][2]string{{"X-Test", "yes"}}, s.Steps[1].Headers)
	require.Equal(t, "p", s.Steps[3].Label())

	require.Len(t, s.Expects, 4)
	require.Equal(t, []int{200, 201}, s.Expects[0].Status)
	require.Equal(t, [][2]string{{"Content-Type", "{{any}}"}}, s.Expects[0].Headers)
	require.Equal(t, []string{"DL8"}, s.Expects[0].Reqs)
	require.Equal(t, "exactly", s.Expects[1].Mode)
	require.Equal(t, "unordered", s.Expects[2].Mode)
	require.Equal(t, "bot", s.Expects[2].Party)
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no separator", "requirement: DL1\n> customer start\n", "no ---------- separator"},
		{"no requirement", "> customer start\n----------\n", "at least one requirement"},
		{"unknown header", "requirment: DL1\n----------\n", `:1: unknown header "requirment"`},
		{"unknown action", "requirement: DL1\n> customer jump\n----------\n", `:2: unknown customer action "jump"`},
		{"bad JSON", "requirement: DL1\n> customer post\n{\"type\": \n----------\n", ":2: the block's JSON"},
		{"input after separator", "requirement: DL1\n----------\n> customer start\n", ":3: an input line after"},
		{"output before separator", "requirement: DL1\n< customer sees\n----------\n", ":2: an expected-output line before"},
		{"unknown label", "requirement: DL1\n> customer start\n----------\n< response nope\n", `:4: no step is labelled "nope"`},
		{"duplicate label", "requirement: DL1\n> customer get as=a\n> customer get as=a\n----------\n", `label "a" is used twice`},
		{"bot trigger not an object", "requirement: DL1\n> bot on [1]\n----------\n", "the trigger must be a JSON object"},
		{"bad status", "requirement: DL1\n> bot on {} status=abc\n----------\n", "status=abc"},
		{"bad mode", "requirement: DL1\n----------\n< customer sees sometimes\n", `unknown word "sometimes"`},
		{"two separators", "requirement: DL1\n----------\n----------\n", "a second ----------"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.scenario", []byte(tc.src))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "x.scenario"), "errors name the file: %v", err)
		})
	}
}

func TestParseFutureLegs(t *testing.T) {
	// Escalation scenarios name a mapping row and an omnichannel leg: they parse, and a runner
	// without that leg reports them unsupported rather than failing.
	src := "requirement: ESC:Routing.Vars@omnichannel context variables reach the workstream\n" +
		"> customer start\n> omnichannel accept as=a\n----------\n< omnichannel receives\n{\"type\": \"message\"}\n"
	s, err := Parse("esc.scenario", []byte(src))
	require.NoError(t, err)
	require.Equal(t, "omnichannel", s.Steps[1].Party)
	res := RunScenario(t.Context(), &Target{URL: "http://127.0.0.1:1/v3/directline"}, s)
	require.Equal(t, Unsupported, res.Status)
	require.Contains(t, res.Reason, "omnichannel leg is not implemented")
}

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"b.scenario": {Data: []byte("requirement: DL1\n----------\n")},
		"a.scenario": {Data: []byte("requirement: DL2\n----------\n")},
		"README.md":  {Data: []byte("not a scenario")},
	}
	all, err := Load(fsys)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "a", all[0].Name)

	fsys["c.scenario"] = &fstest.MapFile{Data: []byte("name: a\nrequirement: DL2\n----------\n")}
	_, err = Load(fsys)
	require.ErrorContains(t, err, `scenario name "a" is also used by a.scenario`)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("requirement: DL1\n> customer request GET /x\nA: b\n\"raw\"\n----------\n< response x\nstatus: 200\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.scenario", data)
		if err == nil && len(s.Requirements) == 0 {
			t.Fatal("a parsed scenario names a requirement")
		}
	})
}
