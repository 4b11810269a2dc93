package dynamics

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
)

func TestSplitText(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want []string
	}{
		{"empty", "", 10, nil},
		{"fits", "hello", 10, []string{"hello"}},
		{"paragraph", "aaaa bbbb\n\ncc", 12, []string{"aaaa bbbb\n\n", "cc"}},
		{"line", "aaaa bbbb\ncccc", 12, []string{"aaaa bbbb\n", "cccc"}},
		{"space", "aaaa bbbb cccc", 12, []string{"aaaa bbbb ", "cccc"}},
		{"hard cut", "abcdefghijklmnop", 6, []string{"abcdef", "ghijkl", "mnop"}},
		{"break too early is not used", "a bcdefghijkl", 8, []string{"a bcdefg", "hijkl"}},
		{"surrogate pair never split", "abc😀😀", 4, []string{"abc", "😀😀"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SplitText(tc.in, tc.max)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.in, strings.Join(got, ""))
		})
	}
}

func TestStartMessageTrimsTo27KB(t *testing.T) {
	e := &handoff.Escalation{AgentNote: "Refund for order A-42", Reason: handoff.Reason{LastTopic: "Refunds"}}
	for i := range 400 {
		a := &activity.Activity{Type: activity.TypeMessage, Text: fmt.Sprintf("line %03d %s \"quoted\" <b>", i, strings.Repeat("é", 60)),
			From: &activity.ChannelAccount{ID: "u", Role: activity.RoleUser}, Timestamp: activity.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
		e.Transcript.Activities = append(e.Transcript.Activities, a)
	}
	m := StartMessage(e, "bot")
	require.LessOrEqual(t, jsonLen(m)-2, MaxStartMessageBytes)
	require.Greater(t, jsonLen(m)-2, MaxStartMessageBytes-1024, "the room is used")
	require.True(t, strings.HasPrefix(m, "Refund for order A-42\nLast topic: Refunds\n\nTranscript:\n["), m[:80])
	require.Contains(t, m, "earlier lines left out]")
	require.True(t, strings.HasSuffix(m, "line 399 "+strings.Repeat("é", 60)+" \"quoted\" <b>"), "the most recent line is kept")
	require.Contains(t, m, "[03:04:05] Customer: line 399")
	require.True(t, utf8.ValidString(m))

	huge := &handoff.Escalation{Transcript: handoff.Transcript{Activities: []*activity.Activity{{Type: activity.TypeMessage,
		Text: strings.Repeat("ü<", 20000), From: &activity.ChannelAccount{Role: activity.RoleUser}}}}}
	m = StartMessage(huge, "bot")
	require.LessOrEqual(t, jsonLen(m)-2, MaxStartMessageBytes, "a single line too long is cut")
	require.Greater(t, jsonLen(m)-2, MaxStartMessageBytes-128, "cut at the limit, escapes counted")

	short := StartMessage(&handoff.Escalation{}, "bot")
	require.Equal(t, "The bot requested a human agent.", short)
}

func TestContextLimits(t *testing.T) {
	vars := handoff.Variables{}
	for i := range 150 {
		vars[fmt.Sprintf("v%03d", i)] = handoff.String(strings.Repeat("x", 5000))
	}
	vars["nothing"] = handoff.Null()
	out := contextOf(&testConv, &handoff.Escalation{Context: vars, AgentNote: "note"})
	require.Len(t, out, MaxContextEntries)
	var s string
	require.NoError(t, json.Unmarshal(out["v000"].Value, &s))
	require.Equal(t, MaxContextValueChars, len(s))
	require.Contains(t, out, VarSessionID)
	require.Contains(t, out, VarChannel)
	require.Contains(t, out, VarSummary)
	require.NotContains(t, out, "nothing")
}

func TestParseProblem(t *testing.T) {
	p, ok := ParseProblem([]byte(`{"type":"about:blank","title":"Bad Request","status":400,"detail":"text too long","code":30011}`))
	require.True(t, ok)
	require.Equal(t, Problem{Type: "about:blank", Title: "Bad Request", Status: 400, Detail: "text too long", Code: CodeTextTooLong}, p)
	p, ok = ParseProblem([]byte(`{"title":"x","errorCode":"30013"}`))
	require.True(t, ok)
	require.Equal(t, CodeNoSuchConversation, p.Code)
	_, ok = ParseProblem([]byte(`<html>`))
	require.False(t, ok)
}

func TestParseTokenResponse(t *testing.T) {
	tok, life, _, err := ParseTokenResponse([]byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"abc"}`))
	require.NoError(t, err)
	require.Equal(t, "abc", tok)
	require.Equal(t, 3599*time.Second, life)
	_, _, oe, err := ParseTokenResponse([]byte(`{"error":"invalid_client"}`))
	require.Error(t, err)
	require.Equal(t, "invalid_client", oe)
	_, life, _, err = ParseTokenResponse([]byte(`{"access_token":"abc","expires_in":-5}`))
	require.NoError(t, err)
	require.Equal(t, time.Hour, life)
}

func TestParseWebhook(t *testing.T) {
	w, err := ParseWebhook([]byte(`{"type":"message","text":"EventName: **_AgentAccepted_**"}`))
	require.NoError(t, err)
	require.Equal(t, "AgentAccepted", w.Name, "the name spelled in the text")
	w, err = ParseWebhook([]byte(`{"type":"message","name":"ConversationClosed","text":"EventName: **_ConversationClosed_**"}`))
	require.NoError(t, err)
	require.Equal(t, eventEnded, kindOf(w.Name))
	require.Equal(t, eventEnded, kindOf("ConversationClose"))
	require.Equal(t, eventEnded, kindOf("AgentClosed"))
	require.Equal(t, eventJoined, kindOf("AgentAssigned"))
	require.Equal(t, eventOther, kindOf("TransferToQueue"))
	_, err = ParseWebhook([]byte(`{}`))
	require.Error(t, err)
}

func TestCreateAnswerIDs(t *testing.T) {
	for _, in := range []string{`{"conversationId":"x","isNew":true,"messageId":"1700000000000"}`, `{"conversationId":"x","isNew":true,"messageId":1700000000000}`} {
		var r createResponse
		require.NoError(t, json.Unmarshal([]byte(in), &r))
		require.Equal(t, digitsID("1700000000000"), r.MessageID)
	}
}
