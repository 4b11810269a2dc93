package handoff

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
)

func encoded(t *testing.T, a *activity.Activity) []byte {
	t.Helper()
	b, err := activity.Marshal(a)
	require.NoError(t, err)
	return b
}

func TestEmitOmnichannelFitsTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		note string
	}{
		{"ascii", strings.Repeat("a", 40_000)},
		{"escaped characters", strings.Repeat("\"\n", 20_000)},
		{"multi-byte runes", strings.Repeat("日本", 10_000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Escalation{AgentNote: tc.note, Context: Variables{"Skill": String("cards")}}
			for _, emit := range []func() (*activity.Activity, []Note, error){
				func() (*activity.Activity, []Note, error) { return EmitOmnichannel(e, CoerceOptions{}) },
				func() (*activity.Activity, []Note, error) { return EmitCustomChannel(e, "web", CoerceOptions{}) },
			} {
				a, notes, err := emit()
				require.NoError(t, err)
				b := encoded(t, a)
				require.LessOrEqual(t, len(b), OmnichannelMaxMessageBytes)
				require.Greater(t, len(b), OmnichannelMaxMessageBytes-16, "the text is cut no more than needed")
				require.True(t, utf8.ValidString(a.Text))
				require.True(t, strings.HasPrefix(tc.note, a.Text))
				require.Equal(t, NoteTruncated, notes[len(notes)-1].Code)
			}
		})
	}
}

func TestEmitOmnichannelContextTooLarge(t *testing.T) {
	vars := Variables{}
	for i := range 10 {
		vars[strings.Repeat("v", 10)+string(rune('a'+i))] = String(strings.Repeat("x", 4000))
	}
	_, _, err := EmitOmnichannel(&Escalation{AgentNote: "n", Context: vars}, CoerceOptions{})
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestEmitOmnichannelEscalate(t *testing.T) {
	e := &Escalation{
		Source:    Source{ConversationID: "c1", BotID: "b1"},
		AgentNote: "note",
		Context:   Variables{"IDNumber": Integer(101)},
		Customer:  Customer{ID: "u1", Name: "Ann", Email: "ann@example.com"},
		Links:     Links{CaseNumber: "CAS-1"},
	}
	a, notes, err := EmitOmnichannel(e, CoerceOptions{})
	require.NoError(t, err)
	require.Empty(t, notes)
	require.Equal(t, activity.TypeMessage, a.Type)
	require.Equal(t, "note", a.Text)
	require.Nil(t, a.Recipient, "Omnichannel identifies the customer by variables")
	require.Nil(t, a.ChannelDataField("deliveryMode"), "an Escalate command is for the agent only")
	var tags string
	require.NoError(t, json.Unmarshal(a.ChannelDataField("tags"), &tags))
	require.Equal(t, `{"type":"Escalate","context":{"CaseNumber":"CAS-1","Email":"ann@example.com","IDNumber":101,"Name":"Ann"}}`, tags)

	// A variable of the field's own wins over the typed field, and an alias counts.
	e.Context = Variables{"Email": String("other@example.com"), "MSCallerId": String("+1")}
	e.Customer.Phone = "+2"
	a, _, err = EmitOmnichannel(e, CoerceOptions{})
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(a.ChannelDataField("tags"), &tags))
	require.Equal(t, `{"type":"Escalate","context":{"CaseNumber":"CAS-1","Email":"other@example.com","MSCallerId":"+1","Name":"Ann"}}`, tags)
}

func TestMarkBridged(t *testing.T) {
	a := &activity.Activity{Type: activity.TypeMessage, Text: "hi", ChannelData: json.RawMessage(`{"keep":1}`)}
	require.NoError(t, MarkBridged(a))
	require.JSONEq(t, `{"keep":1,"deliveryMode":"bridged"}`, string(a.ChannelData))
	b := &activity.Activity{Type: activity.TypeMessage}
	require.NoError(t, MarkBridged(b))
	require.JSONEq(t, `{"deliveryMode":"bridged"}`, string(b.ChannelData))
}

func TestBridgedMessage(t *testing.T) {
	a, err := BridgedMessage(Source{ConversationID: "c", BotID: "b"}, "An agent will join shortly.")
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"message","from":{"id":"b"},"conversation":{"id":"c"},"text":"An agent will join shortly.","channelData":{"deliveryMode":"bridged"}}`,
		string(encoded(t, a)))
	s, err := Detect(a)
	require.NoError(t, err)
	require.Equal(t, SignalNone, s.Kind, "a bridged line is not a signal")
}

func TestEmitStatus(t *testing.T) {
	for _, tc := range []struct {
		state, message, value string
		notes                 int
	}{
		{StateAccepted, "", `{"state":"accepted"}`, 0},
		{StateFailed, "No agents", `{"state":"failed","message":"No agents"}`, 0},
		{StateCompleted, "", `{"state":"completed"}`, 0},
		{StatePending, "Position 3", `{"state":"pending","message":"Position 3"}`, 1},
	} {
		t.Run(tc.state, func(t *testing.T) {
			a, notes, err := EmitStatus(&Status{Source: Source{ConversationID: "c"}, State: tc.state, Message: tc.message})
			require.NoError(t, err)
			require.Len(t, notes, tc.notes)
			require.Equal(t, EventHandoffStatus, a.Name)
			require.Equal(t, activity.TypeEvent, a.Type)
			require.Equal(t, tc.value, string(a.Value))
		})
	}
}

func TestEmitEndOfConversationCodes(t *testing.T) {
	for _, tc := range []struct{ reason, code, want string }{
		{EndCompleted, "", CodeCompletedSuccessfully},
		{EndCustomer, "", CodeUserCancelled},
		{EndTimeout, "", CodeBotTimedOut},
		{EndFailure, "", CodeChannelFailed},
		{EndFailure, CodeBotIssuedInvalidMessage, CodeBotIssuedInvalidMessage},
		{EndBot, "", ""},
		{EndAgent, "", ""},
	} {
		t.Run(tc.reason+"/"+tc.code, func(t *testing.T) {
			a, _, err := EmitEndOfConversation(&End{Reason: tc.reason, Code: tc.code})
			require.NoError(t, err)
			require.Equal(t, tc.want, a.Code)
			require.Nil(t, a.Value)
		})
	}
}

func TestEmitUnsupported(t *testing.T) {
	for _, tc := range []struct {
		s Signal
		d Dialect
	}{
		{Signal{Kind: SignalStatus, Status: &Status{State: StateAccepted}}, DialectOmnichannel},
		{Signal{Kind: SignalStatus, Status: &Status{State: StateAccepted}}, DialectCopilot},
		{Signal{Kind: SignalContext, Context: &InboundContext{}}, DialectBotFramework},
		{Signal{Kind: SignalNone}, DialectOmnichannel},
		{Signal{Kind: SignalEscalation}, DialectOmnichannel},
		{Signal{Kind: SignalEscalation, Escalation: &Escalation{}}, Dialect("sms")},
	} {
		t.Run(string(tc.s.Kind)+"/"+string(tc.d), func(t *testing.T) {
			_, _, err := Emit(tc.s, tc.d, EmitOptions{})
			require.ErrorIs(t, err, ErrUnsupported)
		})
	}
}

func TestSummary(t *testing.T) {
	require.Equal(t, "The bot requested a human agent.", Summary(&Escalation{}))
	e := &Escalation{
		Source: Source{BotID: "bot-1"},
		Reason: Reason{Text: "asked for a human", LastTopic: "Billing", LastPhrases: []string{"refund", "agent"}},
		Transcript: Transcript{Activities: []*activity.Activity{
			{Type: activity.TypeMessage, From: &activity.ChannelAccount{Role: activity.RoleUser}, Text: "I want  a\nrefund"},
			{Type: activity.TypeTyping, From: &activity.ChannelAccount{Role: activity.RoleBot}},
			{Type: activity.TypeMessage, From: &activity.ChannelAccount{ID: "bot-1"}, Text: "Let me check."},
			{Type: activity.TypeMessage, From: &activity.ChannelAccount{Role: "agent"}, Text: "Hello, I am Kim."},
			{Type: activity.TypeMessage, From: &activity.ChannelAccount{Name: "Supervisor"}, Text: "noted"},
			{Type: activity.TypeMessage, Text: "who?"},
			{Type: activity.TypeMessage, From: &activity.ChannelAccount{Role: activity.RoleUser}, Text: "  "},
		}},
	}
	require.Equal(t, "Reason: asked for a human\nLast topic: Billing\nLast phrases: refund | agent\n"+
		"Customer: I want a refund\nBot: Let me check.\nAgent: Hello, I am Kim.\nSupervisor: noted\nUnknown: who?", Summary(e))

	// Only the most recent lines that fit are kept.
	var acts []*activity.Activity
	for i := range 200 {
		acts = append(acts, &activity.Activity{Type: activity.TypeMessage, From: &activity.ChannelAccount{Role: activity.RoleUser},
			Text: fmt.Sprintf("line %03d %s", i, strings.Repeat("x", 40))})
	}
	s := Summary(&Escalation{Transcript: Transcript{Activities: acts}})
	require.LessOrEqual(t, utf16Len(s), SummaryMaxChars)
	require.Greater(t, utf16Len(s), SummaryMaxChars-60, "as many lines as fit")
	require.True(t, strings.HasPrefix(strings.Split(s, "\n")[0], "Customer: line "))
	require.Contains(t, s, "line 199")
	require.NotContains(t, s, "line 000")
}

func TestEmitTranscript(t *testing.T) {
	acts := []*activity.Activity{{Type: activity.TypeMessage, Text: "hi"}}
	for _, tc := range []struct {
		name string
		tr   Transcript
		want string
	}{
		{"inline", Transcript{Activities: acts}, `[{"contentType":"application/json","content":{"activities":[{"type":"message","text":"hi"}]},"name":"Transcript"}]`},
		{"by url", Transcript{URL: "https://x/t.json"}, `[{"contentType":"application/json","contentUrl":"https://x/t.json","name":"Transcript"}]`},
		{"both", Transcript{Activities: acts, URL: "https://x/t.json"}, `[{"contentType":"application/json","contentUrl":"https://x/t.json","content":{"activities":[{"type":"message","text":"hi"}]},"name":"Transcript"}]`},
		{"none", Transcript{}, `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, emit := range []func(*Escalation) (*activity.Activity, []Note, error){EmitBotFramework, EmitCopilot} {
				a, _, err := emit(&Escalation{Source: Source{ConversationID: "c"}, Transcript: tc.tr})
				require.NoError(t, err)
				b, err := json.Marshal(a.Attachments)
				require.NoError(t, err)
				require.JSONEq(t, tc.want, string(b))
				back, err := Detect(decode(t, string(encoded(t, a))))
				require.NoError(t, err)
				got := back.Escalation.Transcript
				require.Equal(t, tc.tr.URL, got.URL)
				require.Len(t, got.Activities, len(tc.tr.Activities))
			}
		})
	}
}
