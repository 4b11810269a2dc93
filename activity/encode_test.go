package activity

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// bothEncodings returns a encoded by the hand-written encoder and by the reflection path it
// replaced (encoding/json over the plain structs, every nested type included).
func bothEncodings(t testing.TB, a *Activity) (fast, slow []byte, fastErr, slowErr error) {
	t.Helper()
	fast, fastErr = Marshal(a)
	reflectOnly.Store(true)
	defer reflectOnly.Store(false)
	slow, slowErr = Marshal(a)
	return
}

func requireSameEncoding(t *testing.T, a *Activity) {
	t.Helper()
	fast, slow, fastErr, slowErr := bothEncodings(t, a)
	require.Equal(t, slowErr != nil, fastErr != nil, "errors: fast %v, reflection %v", fastErr, slowErr)
	require.Equal(t, string(slow), string(fast))
}

// recordedActivities collects every JSON object with a string "type" member, at any depth, in
// the shared recordings (real services' traffic), the conformance scenarios and the handoff
// golden files: the activities the bridge is known to relay.
func recordedActivities(t *testing.T) [][]byte {
	t.Helper()
	root := testutil.RepoRoot(t)
	dirs := []string{
		filepath.Join(testutil.SharedDir(t), "recordings"),
		filepath.Join(root, "conformance", "scenarios"),
		filepath.Join(root, "activity", "handoff", "testdata"),
	}
	var found [][]byte
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["type"].(string); ok {
				b, err := json.Marshal(v)
				require.NoError(t, err)
				found = append(found, b)
			}
			for _, m := range v {
				walk(m)
			}
		case []any:
			for _, m := range v {
				walk(m)
			}
		}
	}
	for _, dir := range dirs {
		require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			var whole any
			if json.Unmarshal(data, &whole) == nil {
				walk(whole)
				return nil
			}
			sc := bufio.NewScanner(bytes.NewReader(data)) // one JSON value a line (scenarios, golden files)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var v any
				if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &v) == nil {
					walk(v)
				}
			}
			return sc.Err()
		}))
	}
	return found
}

// TestFastEncoderMatchesRecorded holds the hand-written encoder to the reflection path over
// every recorded activity, as decoded and after the changes a relay makes (new ids, times,
// channelData, addresses).
func TestFastEncoderMatchesRecorded(t *testing.T) {
	all := recordedActivities(t)
	require.Greater(t, len(all), 200, "expected the recorded activities")
	yes := true
	for i, raw := range all {
		a, err := Decode(raw)
		if err != nil {
			continue // not an activity after all (a card action, an entity): nothing to encode
		}
		requireSameEncoding(t, a)
		a.ID = "conv|0000042"
		a.Timestamp = NewTime(time.Date(2026, 12, 6, 11, 0, 0, int(i)*1000, time.FixedZone("x", 3600)))
		a.HistoryDisclosed = &yes
		if a.From == nil {
			a.From = &ChannelAccount{ID: "u<1>&", Role: RoleUser}
		}
		a.Conversation = &ConversationAccount{ID: "c", IsGroup: &yes, Extra: Extra{"x<y>": json.RawMessage(` [1, 2] `)}}
		require.NoError(t, a.SetChannelDataField("bridged", true))
		requireSameEncoding(t, a)
	}
}

// TestFastEncoderShapes covers what recordings rarely carry: escapes of every kind, invalid
// UTF-8 in built (not decoded) values, empty against absent slices, unknown members spelled like
// known ones, and raw members that are not valid JSON (both paths refuse them).
func TestFastEncoderShapes(t *testing.T) {
	zero := 0
	no := false
	for name, a := range map[string]*Activity{
		"empty":   {},
		"escapes": {Type: "message", Text: "a\"b\\c\n\r\t\b\f\x00\x1f<>&\u2028\u2029é😀", Speak: "\xff\xfe ok \xed\xa0\x80"},
		"slices": {Type: "conversationUpdate", MembersAdded: []ChannelAccount{}, MembersRemoved: []ChannelAccount{{ID: "b", Properties: json.RawMessage(`{ "a" : 1 }`)}},
			Entities: []json.RawMessage{nil, json.RawMessage(` {"type" : "x"} `)}, ListenFor: []string{}, Attachments: []Attachment{}},
		"nested": {Type: "message", SuggestedActions: &SuggestedActions{Actions: []CardAction{{Type: "imBack", Value: json.RawMessage(`"x<y>"`)}}},
			RelatesTo: &ConversationReference{ActivityID: "1", Bot: &ChannelAccount{ID: "b"}}, SemanticAction: &SemanticAction{ID: "s", Entities: json.RawMessage(`{}`)},
			TextHighlights: []TextHighlight{{Text: "t", Occurrence: &zero}}, ReactionsAdded: []MessageReaction{{Type: "like"}}, ReactionsRemoved: []MessageReaction{},
			ListenFor: []string{"a<b", "c"}, Conversation: &ConversationAccount{IsGroup: &no, Role: RoleBot, TenantID: "t"}},
		"times":           {Type: "message", Timestamp: NewTime(time.Unix(0, 1).In(time.FixedZone("y", -7200))), Expiration: Time{raw: json.RawMessage(`1654211880`)}, LocalTimestamp: Time{raw: json.RawMessage(`"2019-08-20T13:37:05-07:00"`)}},
		"extra":           {Type: "message", Extra: Extra{"z": json.RawMessage(" [ 1 ,\n2 ] "), "a<&>": json.RawMessage(`"\u003c"`), "\u2028": json.RawMessage(`{}`)}},
		"extra invalid":   {Type: "message", Extra: Extra{"bad": json.RawMessage(`{`), "nil": nil}},
		"extra collides":  {Type: "message", Extra: Extra{"Text": json.RawMessage(`null`), "id": json.RawMessage(`""`)}},
		"collides, set":   {Type: "message", Text: "set", Extra: Extra{"text": json.RawMessage(`null`)}},
		"account collide": {Type: "message", From: &ChannelAccount{ID: "u", Extra: Extra{"name": json.RawMessage(`null`)}}},
		"nested invalid":  {Type: "message", From: &ChannelAccount{ID: "u", Extra: Extra{"bad": json.RawMessage(`{`)}}},
		"nested nil":      {Type: "message", Recipient: &ChannelAccount{ID: "u", Extra: Extra{"nil": nil}}},
		"bad channelData": {Type: "message", ChannelData: json.RawMessage(`{"a":`)},
		"bad value":       {Type: "message", Value: json.RawMessage(`nul`)},
		"empty entity":    {Type: "message", Entities: []json.RawMessage{{}}},
		"bad time":        {Type: "message", Timestamp: Time{raw: json.RawMessage(`"x`)}},
		"bad properties":  {Type: "message", Conversation: &ConversationAccount{ID: "c", Properties: json.RawMessage(`[1,]`)}},
	} {
		t.Run(name, func(t *testing.T) { requireSameEncoding(t, a) })
	}
}

// TestFastEncoderAccounts checks the accounts' own MarshalJSON, which the stores and channels
// call directly, against the reflection path, invalid unknown members included.
func TestFastEncoderAccounts(t *testing.T) {
	yes := true
	for _, v := range []json.Marshaler{
		ChannelAccount{}, ChannelAccount{ID: "u", Name: "<n>", AADObjectID: "o", Role: RoleUser, Properties: json.RawMessage(` { } `), Extra: Extra{"k": json.RawMessage(`{`), "n": nil}},
		ConversationAccount{}, ConversationAccount{IsGroup: &yes, ConversationType: "personal", ID: "c", Name: "n", Role: RoleBot, TenantID: "t", Extra: Extra{"ID": json.RawMessage(`""`)}},
	} {
		fast, fastErr := v.MarshalJSON()
		reflectOnly.Store(true)
		slow, slowErr := v.MarshalJSON()
		reflectOnly.Store(false)
		require.Equal(t, slowErr, fastErr)
		require.Equal(t, string(slow), string(fast))
	}
}

// FuzzFastEncoder decodes any input that is an activity, then encodes it both ways; the fuzzer
// also builds its text, name and an unknown member from raw bytes (invalid UTF-8 included),
// which decoding alone never yields.
func FuzzFastEncoder(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","text":"hi","from":{"id":"u","role":1,"x":[ 1 ]},"channelData":{"clientActivityID":"1"}}`,
		`{"type":"message","id":null,"Text":"","timestamp":"2019-08-20T13:37:05.5Z","conversation":{"id":"c","isGroup":false,"ID":null}}`,
		`{"type":"conversationUpdate","membersAdded":[{"id":"b","x":1}],"membersRemoved":[],"entities":[null,{}],"zz":[]}`,
		`{"type":"message","suggestedActions":{"actions":[{"type":"imBack","value":"x"}]},"attachments":[{"content":{"a":[]}}],"relatesTo":{"user":{"id":"u"}}}`,
		`{"type":"message","localTimestamp":1654211880,"listenFor":["a"],"textHighlights":[{"text":"t","occurrence":1}],"semanticAction":{"id":"s"}}`,
	} {
		f.Add([]byte(s), "text <&>\u2028", "k")
	}
	f.Fuzz(func(t *testing.T, in []byte, text, key string) {
		a, err := Decode(in)
		if err != nil {
			return
		}
		check := func() {
			fast, slow, fastErr, slowErr := bothEncodings(t, a)
			if (fastErr != nil) != (slowErr != nil) || string(fast) != string(slow) {
				t.Fatalf("%q:\nfast       %s (%v)\nreflection %s (%v)", in, fast, fastErr, slow, slowErr)
			}
		}
		check()
		a.Text, a.Name = text, key
		if a.Extra == nil {
			a.Extra = Extra{}
		}
		a.Extra[key] = json.RawMessage(text)
		if a.From != nil {
			a.From.Name = text
		}
		check()
	})
}

// TestFastEncoderAllocations keeps the common activity (a customer's message with its accounts
// and channelData) to one allocation: the output.
func TestFastEncoderAllocations(t *testing.T) {
	a, err := Decode([]byte(`{"type":"message","id":"c|0000001","timestamp":"2026-12-06T11:00:00.123Z","channelId":"directline",` +
		`"from":{"id":"u1","name":"User","role":"user"},"conversation":{"id":"c"},"recipient":{"id":"bot","role":"bot"},` +
		`"text":"ld 1 1765000000","channelData":{"loadSeq":1,"loadSentAt":1765000000}}`))
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Marshal(a); err != nil {
			t.Fatal(err)
		}
	})
	limit := 1.0 // the output
	if testutil.RaceEnabled {
		limit = 3 // and encoding/json's pooled scanner (json.Valid), which the race detector drops at random
	}
	require.LessOrEqual(t, allocs, limit)
}

func BenchmarkMarshal(b *testing.B) {
	a, err := Decode([]byte(`{"type":"message","id":"c|0000001","timestamp":"2026-12-06T11:00:00.123Z","channelId":"directline",` +
		`"from":{"id":"u1","name":"User","role":"user"},"conversation":{"id":"c"},"recipient":{"id":"bot","role":"bot"},` +
		`"text":"ld 1 1765000000","channelData":{"loadSeq":1,"loadSentAt":1765000000}}`))
	require.NoError(b, err)
	for _, mode := range []string{"fast", "reflection"} {
		b.Run(mode, func(b *testing.B) {
			reflectOnly.Store(mode == "reflection")
			defer reflectOnly.Store(false)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Marshal(a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAppendJSONString holds the exported string encoder to json.Marshal.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "conv|0000042", "a\"b\\c\n\x00<>&\u2028\u2029é", "\xff\xed\xa0\x80 x"} {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(AppendJSONString(nil, s)))
	}
}
