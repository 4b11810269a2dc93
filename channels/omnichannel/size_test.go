package omnichannel

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
)

func TestSplitMessage(t *testing.T) {
	const limit = 2048
	env := func(text string) *activity.Activity {
		return &activity.Activity{Type: activity.TypeMessage, ID: "c|0000001", Text: text, ChannelID: "lcw",
			Conversation: &activity.ConversationAccount{ID: "conv"}, ChannelData: json.RawMessage(`{"deliveryMode":"bridged"}`)}
	}
	cases := []struct {
		name, text string
		join       string // how the parts' texts join back to the original
	}{
		{"fits", "short", ""},
		{"words", words(9000), " "},
		{"one long word", strings.Repeat("x", 5000), ""},
		{"multi-byte, no spaces", strings.Repeat("é€😀", 900), ""},
		{"quotes and controls escape larger", strings.Repeat("\"\n<>& ", 1200), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parts, dropped, err := splitMessage(env(tc.text), limit)
			require.NoError(t, err)
			require.Zero(t, dropped)
			var texts []string
			for _, p := range parts {
				require.LessOrEqual(t, sizeOf(p), limit)
				require.True(t, utf8.ValidString(p.Text))
				require.Equal(t, "bridged", deliveryMode(p))
				texts = append(texts, p.Text)
			}
			if tc.name == "fits" {
				require.Len(t, parts, 1)
				return
			}
			require.Greater(t, len(parts), 1)
			if tc.join == " " {
				require.Equal(t, strings.Fields(tc.text), strings.Fields(strings.Join(texts, " ")))
			} else if !strings.ContainsAny(tc.text, " \n") {
				require.Equal(t, tc.text, strings.Join(texts, ""))
			}
		})
	}

	t.Run("envelope alone too large", func(t *testing.T) {
		a := env("hi")
		a.Entities = []json.RawMessage{json.RawMessage(`{"type":"x","v":"` + strings.Repeat("y", 3000) + `"}`)}
		_, _, err := splitMessage(a, limit)
		require.ErrorIs(t, err, ErrTooLarge)
	})
}

func TestCutAtSpace(t *testing.T) {
	for _, tc := range []struct {
		s           string
		n           int
		chunk, rest string
	}{
		{"hello world again", 13, "hello world", "again"},
		{"hello world", 11, "hello world", ""},
		{"abcdefghij klm", 5, "abcde", "fghij klm"},
		{"ab  cd", 5, "ab", "cd"},
	} {
		chunk, rest := cutAtSpace(tc.s, tc.n)
		require.Equal(t, tc.chunk, chunk, tc.s)
		require.Equal(t, tc.rest, rest, tc.s)
	}
}

func TestFitCommand(t *testing.T) {
	vars := handoff.Variables{"Topic": handoff.String("refund")}
	cmd, _, err := handoff.EmitOmnichannel(&handoff.Escalation{AgentNote: words(5000), Context: vars}, handoff.CoerceOptions{})
	require.NoError(t, err)
	cut, err := fitCommand(cmd, 2048)
	require.NoError(t, err)
	require.True(t, cut)
	require.LessOrEqual(t, sizeOf(cmd), 2048)
	require.True(t, strings.HasSuffix(cmd.Text, trimmedMarker))

	big := handoff.Variables{}
	for i := range 20 {
		big[strings.Repeat("v", 5)+string(rune('a'+i))] = handoff.String(strings.Repeat("z", 200))
	}
	cmd, _, err = handoff.EmitOmnichannel(&handoff.Escalation{AgentNote: "note", Context: big}, handoff.CoerceOptions{})
	require.NoError(t, err)
	_, err = fitCommand(cmd, 2048)
	require.ErrorIs(t, err, ErrTooLarge, "the tags are never cut")
}

func TestEscapeComponent(t *testing.T) {
	// botframework.md §2: what botbuilder (encodeURIComponent) sends for these ids.
	require.Equal(t, "a%3Ab%7Clivechat%3Bmessageid%3D1%20x%2Fy", escapeComponent("a:b|livechat;messageid=1 x/y"))
	require.Equal(t, "act%2F1", escapeComponent("act/1"))
	require.Equal(t, "A-z_0.9!~*'()", escapeComponent("A-z_0.9!~*'()"))
	require.Equal(t, "%C3%A9", escapeComponent("é"))
	require.Equal(t, "http://h/v3/conversations/c%7C1/activities/x%3Ay", activitiesURL("http://h/", "c|1", "x:y"))
	require.Equal(t, "http://h/v3/conversations/c/activities", activitiesURL("http://h", "c", ""))
}

func TestBackoffBounds(t *testing.T) {
	c := &Channel{cfg: Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}}
	for attempt := 1; attempt <= 8; attempt++ {
		cp := min(100*time.Millisecond<<(attempt-1), time.Second)
		for range 20 {
			d := c.backoff(attempt)
			require.GreaterOrEqual(t, d, cp/2)
			require.LessOrEqual(t, d, cp)
		}
	}
}
