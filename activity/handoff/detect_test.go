package handoff

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

func decode(t *testing.T, s string) *activity.Activity {
	t.Helper()
	a, err := activity.Decode([]byte(s))
	require.NoError(t, err)
	return a
}

func TestDetectRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hint    Dialect
		in      string
		kind    SignalKind
		dialect Dialect
	}{
		{"endOfConversation wins over tags", "", `{"type":"endOfConversation","channelData":{"tags":"{\"type\":\"Escalate\"}"}}`, SignalEnd, DialectBotFramework},
		{"handoff.initiate wins over tags", "", `{"type":"event","name":"handoff.initiate","channelData":{"tags":"{\"type\":\"EndConversation\"}"}}`, SignalEscalation, DialectBotFramework},
		{"va_ variable makes it Copilot", "", `{"type":"event","name":"handoff.initiate","value":{"va_Scope":"bot"}}`, SignalEscalation, DialectCopilot},
		{"MSCallerId makes it Copilot", "", `{"type":"event","name":"handoff.initiate","value":{"MSCallerId":"+1"}}`, SignalEscalation, DialectCopilot},
		{"a Bot Framework hint overrides va_", DialectBotFramework, `{"type":"event","name":"handoff.initiate","value":{"va_Scope":"bot"}}`, SignalEscalation, DialectBotFramework},
		{"a Copilot hint reads a plain value as Copilot", DialectCopilot, `{"type":"event","name":"handoff.initiate","value":{"x":1}}`, SignalEscalation, DialectCopilot},
		{"the close variable makes an end", "", `{"type":"event","name":"handoff.initiate","value":{"CloseOmnichannelConversation":true}}`, SignalEnd, DialectCopilot},
		{"a false close variable does not", "", `{"type":"event","name":"handoff.initiate","value":{"CloseOmnichannelConversation":false}}`, SignalEscalation, DialectBotFramework},
		{"event names are case-exact", "", `{"type":"event","name":"Handoff.Initiate"}`, SignalNone, ""},
		{"status", "", `{"type":"event","name":"handoff.status","value":{"state":"completed"}}`, SignalStatus, DialectBotFramework},
		{"tags command on a message", "", `{"type":"message","channelData":{"tags":"{\"type\":\"Escalate\"}"}}`, SignalEscalation, DialectOmnichannel},
		{"tags command, Health Bot hint", DialectHealthBot, `{"type":"message","channelData":{"tags":"{\"type\":\"Escalate\"}"}}`, SignalEscalation, DialectHealthBot},
		{"lower-case channeldata", "", `{"type":"message","channeldata":{"tags":"{\"type\":\"EndConversation\",\"context\":{}}"}}`, SignalEnd, DialectOmnichannel},
		{"context label on a message is not a context event", "", `{"type":"message","channelData":{"tags":"OmnichannelContextMessage"}}`, SignalNone, ""},
		{"startConversation without Omnichannel marks", "", `{"type":"event","name":"startConversation","value":{"a":1}}`, SignalNone, ""},
		{"conversationUpdate without Omnichannel marks", "", `{"type":"conversationUpdate","membersAdded":[{"id":"b"}]}`, SignalNone, ""},
		{"conversationUpdate with oc data", "", `{"type":"conversationUpdate","channelData":{"vnd.microsoft.msdyn.oc.data":{"customerPhoneNumber":"+1"}}}`, SignalContext, DialectOmnichannel},
		{"startConversation with sourceChannelId", "", `{"type":"event","name":"startConversation","channelData":{"sourceChannelId":"omnichannel"}}`, SignalContext, DialectOmnichannel},
		{"custom channel customercontext only", "", `{"type":"message","channelData":{"customercontext":{"email":"a@b"}}}`, SignalEscalation, DialectOmnichannelCustom},
		{"channelData that is not an object", "", `{"type":"message","channelData":"tags"}`, SignalNone, ""},
		{"plain message", "", `{"type":"message","text":"hi"}`, SignalNone, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := DetectFrom(tc.hint, decode(t, tc.in))
			require.NoError(t, err)
			require.Equal(t, tc.kind, s.Kind)
			require.Equal(t, tc.dialect, s.Dialect)
			require.Equal(t, tc.kind == SignalEscalation, s.Escalation != nil)
			require.Equal(t, tc.kind == SignalEnd, s.End != nil)
			require.Equal(t, tc.kind == SignalStatus, s.Status != nil)
			require.Equal(t, tc.kind == SignalContext, s.Context != nil)
		})
	}
}

func TestDetectNil(t *testing.T) {
	s, err := Detect(nil)
	require.NoError(t, err)
	require.Equal(t, SignalNone, s.Kind)
}

func TestDetectErrorsOnUnreadableTags(t *testing.T) {
	s, err := Detect(decode(t, `{"type":"message","channelData":{"tags":"{\"type\":\"Transfer\"}"}}`))
	require.ErrorIs(t, err, ErrUnknownCommand)
	require.Equal(t, SignalNone, s.Kind)
	require.True(t, strings.HasPrefix(err.Error(), "handoff: detect: "), err.Error())
}

// TestRecordedTranscriptsCarryNoSignal reads every activity of every recorded .transcript: none
// of them is a handoff, so Detect must find nothing (no false escalations in ordinary traffic).
func TestRecordedTranscriptsCarryNoSignal(t *testing.T) {
	root := filepath.Join(testutil.SharedDir(t), "recordings")
	var files []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".transcript") {
			files = append(files, p)
		}
		return err
	}))
	require.NotEmpty(t, files)
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			tr, err := activity.ReadTranscript(bytes.NewReader(b))
			require.NoError(t, err)
			for i, a := range tr.Activities {
				s, err := Detect(a)
				require.NoError(t, err, "activity %d", i)
				require.Equal(t, SignalNone, s.Kind, "activity %d", i)
			}
		})
	}
}

func TestCopilotLastPhrases(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        []string
	}{
		{"va_LastPhrase as the product sends it", `{"va_LastPhrase":"store hours"}`, []string{"store hours"}},
		{"va_LastPhrases as the docs name it", `{"va_LastPhrases":["a","b"]}`, []string{"a", "b"}},
		{"va_LastPhrases as a string", `{"va_LastPhrases":"a"}`, []string{"a"}},
		{"the documented name first", `{"va_LastPhrases":["doc"],"va_LastPhrase":"product"}`, []string{"doc"}},
		{"an empty phrase is none", `{"va_LastPhrase":""}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Detect(decode(t, `{"type":"event","name":"handoff.initiate","value":`+tc.value+`}`))
			require.NoError(t, err)
			require.Equal(t, tc.want, s.Escalation.Reason.LastPhrases)
		})
	}
	e := &Escalation{Reason: Reason{LastPhrases: []string{"one"}}}
	a, _, err := EmitCopilot(e)
	require.NoError(t, err)
	require.JSONEq(t, `{"va_LastPhrase":"one"}`, string(a.Value))
	e.Reason.LastPhrases = []string{"one", "two"}
	a, _, err = EmitCopilot(e)
	require.NoError(t, err)
	require.JSONEq(t, `{"va_LastPhrases":["one","two"]}`, string(a.Value))
}

func TestLookups(t *testing.T) {
	s, err := Detect(decode(t, `{"type":"event","name":"handoff.initiate","value":{
		"msdyn_contact_msdyn_ocliveworkitem_Customer":[{"RecordId":"c1","PrimaryDisplayValue":"Ann"}],
		"msdyn_account_msdyn_ocliveworkitem_Customer":"[{\"RecordId\":\"a1\"}]",
		"msdyn_incident_msdyn_ocliveworkitem":[],
		"CaseNumber":101}}`))
	require.NoError(t, err)
	require.Equal(t, Links{CaseNumber: "101", ContactID: "c1", AccountID: "a1"}, s.Escalation.Links)
}

func TestParseTranscriptContent(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		n        int
		notes    int
	}{
		{"connector object", `{"activities":[{"type":"message","text":"a"}]}`, 1, 0},
		{"PascalCase", `{"Activities":[{"Type":"message","Text":"a"}]}`, 1, 0},
		{"transcript array", `[{"type":"message"},{"type":"typing"}]`, 2, 0},
		{"transcript object", `{"transcript":[{"type":"message"}]}`, 1, 0},
		{"string holding JSON", `"{\"activities\":[{\"type\":\"message\"}]}"`, 1, 1},
		{"string of a string is not read", `"\"[]\""`, 0, 1},
		{"plain string", `"hello"`, 0, 1},
		{"items without a type are skipped", `[{"text":"x"},5,{"type":"message"}]`, 1, 2},
		{"no activities member", `{"items":[]}`, 0, 1},
		{"number", `42`, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acts, notes := ParseTranscriptContent([]byte(tc.in))
			require.Len(t, acts, tc.n)
			require.Len(t, notes, tc.notes, "%v", notes)
		})
	}
}
