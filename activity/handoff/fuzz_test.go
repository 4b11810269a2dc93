package handoff

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/bfbridge/bfbridge/activity"
)

// fuzzRoundTrip checks what every parser of outside input must give: a signal that each dialect
// able to carry it emits (or refuses with ErrTooLarge), that reads back as the same kind, and
// that is stable from the second emission on.
func fuzzRoundTrip(t *testing.T, hint Dialect, a *activity.Activity) {
	s, err := DetectFrom(hint, a)
	if err != nil {
		if s.Kind != SignalNone {
			t.Fatalf("an error with kind %s", s.Kind)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownCommand) {
			t.Fatalf("an error of no documented kind: %v", err)
		}
		return
	}
	for _, d := range allDialects {
		em, _, err := Emit(s, d, EmitOptions{})
		if errors.Is(err, ErrUnsupported) || errors.Is(err, ErrTooLarge) {
			continue
		}
		if err != nil {
			t.Fatalf("emit %s: %v", d, err)
		}
		s2 := reread(t, d, em)
		if s2.Kind != s.Kind {
			t.Fatalf("emitted %s reads back as %s, not %s", d, s2.Kind, s.Kind)
		}
		em2, _, err := Emit(s2, d, EmitOptions{})
		if err != nil {
			t.Fatalf("second emit %s: %v", d, err)
		}
		s3 := reread(t, d, em2)
		if p2, p3 := fuzzPayload(t, s2), fuzzPayload(t, s3); p2 != p3 {
			t.Fatalf("%s is not stable:\n%s\n%s", d, p2, p3)
		}
	}
}

func reread(t *testing.T, d Dialect, a *activity.Activity) Signal {
	b, err := activity.Marshal(a)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	back, err := activity.Decode(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	s, err := DetectFrom(d, back)
	if err != nil {
		t.Fatalf("detect %s: %v", b, err)
	}
	return s
}

func fuzzPayload(t *testing.T, s Signal) string {
	var v any
	switch s.Kind {
	case SignalEscalation:
		c := *s.Escalation
		c.Source.Dialect = ""
		v = c
	case SignalEnd:
		c := *s.End
		c.Source.Dialect = ""
		v = c
	case SignalStatus:
		c := *s.Status
		c.Source.Dialect = ""
		v = c
	case SignalContext:
		c := *s.Context
		c.Source.Dialect = ""
		v = c
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal model: %v", err)
	}
	return string(b)
}

// withValue builds an activity around an outside JSON value, or nil when it is not JSON.
func withValue(base string, value []byte) *activity.Activity {
	if !json.Valid(value) {
		return nil
	}
	a, err := activity.Decode([]byte(base))
	if err != nil {
		panic(err)
	}
	a.Value = append(json.RawMessage(nil), value...)
	return a
}

// FuzzParseTags feeds channelData.tags both as raw JSON and as a string. A command must read
// back the same after FormatCommand; labels must not be empty or blank-edged.
func FuzzParseTags(f *testing.F) {
	for _, s := range []string{
		`{"type":"Escalate","context":{"BotHandoffTopic":"CreditCard","IDNumber":101}}`,
		`{"type":"EndConversation","context":{}}`,
		`ChannelId-lcw,OmnichannelContextMessage,Hidden`,
		`["ChannelId-lcw","FromCustomer"]`, ` a, ,b `, `{"type":"escalate","context":null,"x":[1]}`,
		`{"type":"Transfer"}`, `{`, `[1]`, ``, `"x"`, `null`, `{"type":"Escalate","context":{"a":1.5e300,"b":[{}]}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		asString, _ := json.Marshal(in)
		for _, raw := range [][]byte{asString, []byte(in)} {
			tags, _, err := ParseTags(raw)
			if err != nil {
				var te *TagsError
				if !errors.As(err, &te) || (!errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownCommand)) {
					t.Fatalf("undocumented error: %v", err)
				}
				continue
			}
			if tags == nil {
				continue
			}
			if tags.Command != nil {
				s, err := FormatCommand(tags.Command.Type, tags.Command.Context)
				if err != nil {
					t.Fatalf("format: %v", err)
				}
				b, _ := json.Marshal(s)
				again, _, err := ParseTags(b)
				if err != nil || again.Command == nil || again.Command.Type != tags.Command.Type ||
					!again.Command.Context.Equal(tags.Command.Context) {
					t.Fatalf("%s does not read back: %v", s, err)
				}
				continue
			}
			for _, l := range tags.Labels {
				if tags.Shape == TagsComma && (l == "" || l != strings.TrimSpace(l)) {
					t.Fatalf("label %q", l)
				}
			}
		}
		a := &activity.Activity{Type: activity.TypeMessage}
		if err := a.SetChannelDataField("tags", in); err != nil {
			t.Fatal(err)
		}
		fuzzRoundTrip(t, "", a)
	})
}

// FuzzValue checks that any JSON value reads as a Value that writes back to an equal one.
func FuzzValue(f *testing.F) {
	for _, s := range []string{`"a"`, `1`, `-0`, `2.0`, `1e400`, `true`, `null`, `[1,"a"]`, `{"a":{}}`, `"\ud800"`, `0.1e-7`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := ParseValue(in)
		if err != nil {
			return
		}
		back, err := ParseValue(v.Raw())
		if err != nil {
			t.Fatalf("%s writes back as %s, which does not read: %v", in, v.Raw(), err)
		}
		if !v.Equal(back) {
			t.Fatalf("%s → %s → %s", in, v.Raw(), back.Raw())
		}
	})
}

// FuzzCoerce checks CoerceOmnichannel on any variables: String and Integer only, within the
// limits, idempotent, and every variable either kept or noted.
func FuzzCoerce(f *testing.F) {
	for _, s := range []string{`{"a":true,"b":1.5,"c":[1,"x"],"d":{"e":null},"f":null,"":"x","G":"42"}`, `{}`} {
		f.Add([]byte(s), "G")
	}
	f.Fuzz(func(t *testing.T, in []byte, number string) {
		vars, err := ParseVariables(in)
		if err != nil {
			return
		}
		got, notes := CoerceOmnichannel(vars, CoerceOptions{NumberVariables: []string{number}})
		noted := map[string]bool{}
		for _, n := range notes {
			noted[strings.TrimPrefix(n.Path, "context.")] = true
		}
		for name, v := range vars {
			c, kept := got[name]
			if !kept && !noted[name] {
				t.Fatalf("%q dropped without a note", name)
			}
			if kept && !c.Equal(v) && !noted[name] {
				t.Fatalf("%q changed without a note", name)
			}
		}
		for name, v := range got {
			if k := v.Kind(); k != KindString && k != KindInteger {
				t.Fatalf("%q is %s", name, k)
			}
			if s, ok := v.Str(); ok && utf16Len(s) > OmnichannelMaxValueChars {
				t.Fatalf("%q too long", name)
			}
			if utf16Len(name) > OmnichannelMaxNameChars || name == "" {
				t.Fatalf("name %q kept", name)
			}
		}
		again, more := CoerceOmnichannel(got, CoerceOptions{NumberVariables: []string{number}})
		if !again.Equal(got) || len(more) > 0 {
			t.Fatalf("not idempotent: %v", more)
		}
	})
}

// FuzzCopilotValue reads any value as Copilot's handoff.initiate (and endOfConversation) value.
func FuzzCopilotValue(f *testing.F) {
	for _, s := range []string{
		`{"va_Scope":"bot","va_LastTopic":"Store hours","va_Topics":["Store hours"],"va_LastPhrase":"store hours","va_Phrases":["store hours"],"va_ConversationId":"c","va_AgentMessage":"Transferred","va_BotId":"b","va_BotName":"n","va_Language":"En-US"}`,
		`{"va_LastPhrases":["a","b"],"MSCallerId":"+1","msdyn_CaseId":"x","Topic":{"a":[1]},"n":null}`,
		`{"CloseOmnichannelConversation":true}`, `{"closeOmnichannelConversation":"TRUE","va_x":1}`, `"text"`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if a := withValue(`{"type":"event","name":"handoff.initiate","conversation":{"id":"c"},"from":{"id":"b"},"relatesTo":{"user":{"id":"u"}}}`, in); a != nil {
			fuzzRoundTrip(t, DialectCopilot, a)
		}
		if a := withValue(`{"type":"endOfConversation","code":"completedSuccessfully"}`, in); a != nil {
			fuzzRoundTrip(t, "", a)
		}
	})
}

// FuzzBotFrameworkValue reads any value as a Bot Framework handoff.initiate value.
func FuzzBotFrameworkValue(f *testing.F) {
	for _, s := range []string{
		`{"skill":"credit cards"}`, `{"MessageToAgent":"VIP","Context":{"Skill":"cards","Priority":1}}`,
		`{"MessageToAgent":5}`, `{"Context":null}`, `{"Context":[1]}`, `"escalate"`, `{"Email":"a@b","Phone":"1","Name":"n"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if a := withValue(`{"type":"event","name":"handoff.initiate","conversation":{"id":"c"},"recipient":{"id":"u","name":"U"}}`, in); a != nil {
			fuzzRoundTrip(t, DialectBotFramework, a)
		}
	})
}

// FuzzStatusValue reads any value as a handoff.status value.
func FuzzStatusValue(f *testing.F) {
	for _, s := range []string{`{"state":"accepted"}`, `{"state":"failed","message":"m"}`, `{"message":null}`, `{"state":1}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if a := withValue(`{"type":"event","name":"handoff.status","conversation":{"id":"c"}}`, in); a != nil {
			fuzzRoundTrip(t, "", a)
		}
	})
}

// FuzzTranscriptContent reads any attachment content as a transcript.
func FuzzTranscriptContent(f *testing.F) {
	for _, s := range []string{
		`{"activities":[{"type":"message","text":"hi","from":{"role":"user"}}]}`, `{"Activities":[{"Type":"message","From":{"Role":1}}]}`,
		`[{"type":"typing"},{"text":"x"}]`, `{"transcript":[]}`, `"{\"activities\":[]}"`, `5`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		acts, _ := ParseTranscriptContent(in)
		for _, a := range acts {
			if a == nil || a.Type == "" {
				t.Fatal("an activity without a type")
			}
		}
		if !json.Valid(in) {
			return
		}
		a, err := activity.Decode([]byte(`{"type":"event","name":"handoff.initiate","conversation":{"id":"c"},"attachments":[{"contentType":"application/json","name":"Transcript"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		a.Attachments[0].Content = append(json.RawMessage(nil), in...)
		fuzzRoundTrip(t, "", a)
	})
}

// FuzzContextEvent reads any value as Omnichannel's context, in an event and as voice data.
func FuzzContextEvent(f *testing.F) {
	for _, s := range []string{
		`{"msdyn_liveworkitemid":"x","Name":"n","msdyn_contact_msdyn_ocliveworkitem_Customer":[{"RecordId":"c"}]}`,
		`{"customerPhoneNumber":"+1","voices":{"en-US":{}}}`, `[]`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if a := withValue(`{"type":"event","name":"startConversation","channelId":"lcw","from":{"id":"u","role":1},"channeldata":{"tags":"ChannelId-lcw,OmnichannelContextMessage,Hidden","sourceChannelId":"omnichannel"}}`, in); a != nil {
			fuzzRoundTrip(t, "", a)
		}
		if !json.Valid(in) {
			return
		}
		a := &activity.Activity{Type: activity.TypeConversationUpdate, ChannelID: "telephony"}
		if err := a.SetChannelDataField(OCDataKey, json.RawMessage(in)); err != nil {
			return
		}
		fuzzRoundTrip(t, "", a)
	})
}

// FuzzDetect reads any activity.
func FuzzDetect(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","text":"Escalating...","channelData":{"tags":"{\"type\":\"Escalate\",\"context\":{\"EscalateToAgent\":1}}"}}`,
		`{"type":"message","channeldata":{"channeltype":"x","conversationcontext ":{"a":1},"customercontext":{"email":"e","phonenumber":"p"}},"from":{"id":"u"}}`,
		`{"type":"endOfConversation","code":"botTimedOut","value":{"CaseNumber":"1"}}`,
		`{"type":"event","name":"handoff.initiate","value":{"va_Scope":"bot"},"attachments":[{"name":"transcript","contentUrl":"u"}]}`,
		`{"type":"message","channelData":{"tags":["a"]}}`,
	} {
		f.Add([]byte(s), "")
	}
	f.Fuzz(func(t *testing.T, in []byte, hint string) {
		a, err := activity.Decode(in)
		if err != nil {
			return
		}
		fuzzRoundTrip(t, Dialect(hint), a)
	})
}
