package activity

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// semantic decodes JSON into generic values so two documents compare by meaning, not layout.
func semantic(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	return v
}

func TestRecordedTranscriptsRoundTrip(t *testing.T) {
	root := filepath.Join(testutil.SharedDir(t), "recordings")
	var files []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".transcript") {
			files = append(files, p)
		}
		return err
	}))
	require.GreaterOrEqual(t, len(files), 10, "expected the shared recordings")
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			in, err := os.ReadFile(f)
			require.NoError(t, err)
			tr, err := ReadTranscript(bytes.NewReader(in))
			require.NoError(t, err)
			require.NotEmpty(t, tr.Activities)
			for i, a := range tr.Activities {
				require.NoError(t, a.Validate(), "activity %d", i)
			}
			var out bytes.Buffer
			require.NoError(t, WriteTranscript(&out, tr))
			require.Equal(t, semantic(t, in), semantic(t, out.Bytes()))
			// the object form holds the same activities
			tr.Form = TranscriptObject
			out.Reset()
			require.NoError(t, WriteTranscript(&out, tr))
			again, err := ReadTranscript(&out)
			require.NoError(t, err)
			require.Equal(t, TranscriptObject, again.Form)
			require.Len(t, again.Activities, len(tr.Activities))
		})
	}
}

func TestUnknownFieldsSurvive(t *testing.T) {
	in := `{"type":"message","id":"c|0000001","text":"hi","futureField":{"x":[1,2]},` +
		`"from":{"id":"u1","role":"user","tenantHint":"t"},` +
		`"conversation":{"id":"c","newFlag":true},` +
		`"attachments":[{"contentType":"application/vnd.microsoft.card.hero","content":{"title":"<b>T</b>"},"layoutHint":3}],` +
		`"entities":[{"type":"ClientCapabilities","requiresBotState":true}],` +
		`"channelData":{"clientActivityID":"abc","deep":{"a":null}},"value":[1,"two"],` +
		`"suggestedActions":{"actions":[{"type":"imBack","title":"A","value":"a","extra":1}],"more":"x"}}`
	a, err := Decode([]byte(in))
	require.NoError(t, err)
	require.Equal(t, json.RawMessage(`{"x":[1,2]}`), a.Extra["futureField"])
	require.Equal(t, json.RawMessage(`"t"`), a.From.Extra["tenantHint"])
	require.Equal(t, "abc", a.ClientActivityID())
	out, err := Marshal(a)
	require.NoError(t, err)
	require.Equal(t, semantic(t, []byte(in)), semantic(t, out))
	require.Contains(t, string(out), `"<b>T</b>"`, "HTML is not escaped")
}

func TestEmptyAndAbsentArraysStayDistinct(t *testing.T) {
	a, err := Decode([]byte(`{"type":"conversationUpdate","membersRemoved":[],"attachments":[]}`))
	require.NoError(t, err)
	out, err := Marshal(a)
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"conversationUpdate","membersRemoved":[],"attachments":[]}`, string(out))
	b, err := Marshal(&Activity{Type: TypeMessage})
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"message"}`, string(b))
}

func TestTimes(t *testing.T) {
	tests := []struct {
		name, in string
		want     time.Time
		out      string
	}{
		{"utc kept verbatim", `"2019-08-20T20:37:05.499Z"`, time.Date(2019, 8, 20, 20, 37, 5, 499e6, time.UTC), `"2019-08-20T20:37:05.499Z"`},
		{"offset kept (A2050)", `"2019-08-20T13:37:05-07:00"`, time.Date(2019, 8, 20, 20, 37, 5, 0, time.UTC), `"2019-08-20T13:37:05-07:00"`},
		{"unix seconds (Omnichannel)", `1654211880`, time.Unix(1654211880, 0), `1654211880`},
		{"unix milliseconds", `1654211880034`, time.UnixMilli(1654211880034), `1654211880034`},
		{"unparseable text kept", `"yesterday"`, time.Time{}, `"yesterday"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tm Time
			require.NoError(t, json.Unmarshal([]byte(tc.in), &tm))
			require.True(t, tc.want.Equal(tm.Time()), "got %v", tm.Time())
			out, err := json.Marshal(tm)
			require.NoError(t, err)
			require.Equal(t, tc.out, string(out))
		})
	}
	t.Run("zero is never written", func(t *testing.T) {
		out, err := Marshal(&Activity{Type: "message"})
		require.NoError(t, err)
		require.NotContains(t, string(out), "0001-01-01")
	})
	t.Run("new times are UTC with Z (A2043)", func(t *testing.T) {
		loc := time.FixedZone("x", 3600)
		out, err := json.Marshal(NewTime(time.Date(2026, 1, 2, 3, 4, 5, 6e6, loc)))
		require.NoError(t, err)
		require.Equal(t, `"2026-01-02T02:04:05.006Z"`, string(out))
	})
}

func TestRolesAcceptNumbers(t *testing.T) {
	a, err := Decode([]byte(`{"type":"event","name":"startConversation","from":{"id":"x","role":1},"recipient":{"id":"b","role":0}}`))
	require.NoError(t, err)
	require.Equal(t, RoleUser, a.From.Role)
	require.Equal(t, RoleBot, a.Recipient.Role)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name, in   string
		code, rule string
	}{
		{"ok", `{"type":"message","text":"x"}`, "", ""},
		{"unknown type is accepted by the schema", `{"type":"somethingNew"}`, "", ""},
		{"no type", `{"text":"x"}`, CodeMissingProperty, "A2010"},
		{"event without name", `{"type":"event"}`, CodeMissingProperty, "A5001"},
		{"invoke without name", `{"type":"invoke"}`, CodeMissingProperty, "A5401"},
		{"bad timestamp", `{"type":"message","timestamp":"noon"}`, CodeBadArgument, "A2043"},
		{"bad localTimestamp", `{"type":"message","localTimestamp":"noon"}`, CodeBadArgument, "A2050"},
		{"from without id", `{"type":"message","from":{"name":"n"}}`, CodeMissingProperty, "A2060"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Decode([]byte(tc.in))
			require.NoError(t, err)
			err = a.Validate()
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.code, ve.Code)
			require.Equal(t, tc.rule, ve.Rule)
			require.True(t, errors.Is(err, ErrInvalid))
		})
	}
	t.Run("malformed", func(t *testing.T) {
		for _, in := range []string{`{`, `[]`, `"x"`, `{"type":5}`, `{"from":"u"}`} {
			_, err := Decode([]byte(in))
			var ve *ValidationError
			require.ErrorAs(t, err, &ve, in)
			require.Equal(t, CodeMalformed, ve.Code)
		}
	})
	t.Run("size", func(t *testing.T) {
		require.NoError(t, CheckSize(bytes.Repeat([]byte("é"), MaxActivityChars)))
		var ve *ValidationError
		require.ErrorAs(t, CheckSize(bytes.Repeat([]byte("a"), MaxActivityChars+1)), &ve)
		require.Equal(t, CodeTooLarge, ve.Code)
	})
}

func TestChannelDataHelpers(t *testing.T) {
	a := &Activity{Type: "message", ChannelData: json.RawMessage(`{"clientActivityID":"1","keep":true}`)}
	require.NoError(t, a.SetChannelDataField("deliveryMode", "bridged"))
	require.JSONEq(t, `{"clientActivityID":"1","keep":true,"deliveryMode":"bridged"}`, string(a.ChannelData))
	c := a.Clone()
	c.Text = "changed"
	c.From = &ChannelAccount{ID: "z"}
	require.Empty(t, a.Text)
	require.Nil(t, a.From)
}

func TestTranscriptForms(t *testing.T) {
	obj := `{"transcript":[{"type":"message","text":"a"},{"notAnActivity":true}],"meta":{"v":1}}`
	tr, err := ReadTranscript(strings.NewReader(obj))
	require.NoError(t, err)
	require.Equal(t, TranscriptObject, tr.Form)
	require.Len(t, tr.Activities, 1, "children without type are skipped (T2008)")
	var out bytes.Buffer
	require.NoError(t, WriteTranscript(&out, tr))
	require.JSONEq(t, `{"transcript":[{"type":"message","text":"a"}],"meta":{"v":1}}`, out.String())
	_, err = ReadTranscript(strings.NewReader("\xEF\xBB\xBF[]"))
	require.ErrorContains(t, err, "T2102")
	_, err = ReadTranscript(strings.NewReader(`{"x":[]}`))
	require.ErrorContains(t, err, "T2100")
}

func TestBlankMembersInAnotherCase(t *testing.T) {
	for in, want := range map[string]string{
		`{"type":"event","name":"x","Value":null}`:                `{"type":"event","name":"x","value":null}`,
		`{"type":"message","ID":"","text":"a"}`:                   `{"type":"message","ID":"","text":"a"}`,
		`{"type":"message","Text":"","channeldata":{"tags":"x"}}`: `{"type":"message","Text":"","channelData":{"tags":"x"}}`,
	} {
		a, err := Decode([]byte(in))
		require.NoError(t, err)
		out, err := Marshal(a)
		require.NoError(t, err)
		require.JSONEq(t, want, string(out), in)
		a.ID = "c|0000001" // set later, as a store does: written once, under its own name
		out, err = Marshal(a)
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(strings.ToLower(string(out)), `"id"`), string(out))
		again, err := Decode(out)
		require.NoError(t, err)
		require.Equal(t, "c|0000001", again.ID)
	}
}

func TestCheckUTF8(t *testing.T) {
	require.NoError(t, CheckUTF8([]byte(`{"type":"message","text":"héllo","channelData":{"x":"\ud800"}}`)),
		"an escaped lone surrogate is ASCII on the wire")
	err := CheckUTF8([]byte("{\"type\":\"message\",\"channelData\":{\"x\":\"\xff\"}}"))
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, CodeBadArgument, ve.Code)
	require.Contains(t, ve.Message, "offset 38")
	// encoding/json turns an escaped lone surrogate in a modelled string into U+FFFD, and keeps
	// it escaped in a raw member: either way the re-encoded activity is valid UTF-8
	a, err := Decode([]byte(`{"type":"message","text":"a\ud800b","channelData":{"x":"\udc00"}}`))
	require.NoError(t, err)
	require.Equal(t, "a\uFFFDb", a.Text)
	out, err := a.MarshalJSON()
	require.NoError(t, err)
	require.True(t, utf8.Valid(out))
}
