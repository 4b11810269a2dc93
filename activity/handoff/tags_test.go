package handoff

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseTags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		raw     string
		shape   TagsShape
		command string // the command's type, or "" for labels
		ctx     string // the command's context as JSON
		labels  []string
		notes   int
	}{
		{"json string escalate", `"{\"type\":\"Escalate\",\"context\":{\"BotHandoffTopic\":\"CreditCard\",\"IDNumber\":101}}"`,
			TagsJSON, CommandEscalate, `{"BotHandoffTopic":"CreditCard","IDNumber":101}`, nil, 0},
		{"json string end", `"{\"type\":\"EndConversation\",\"context\":{}}"`, TagsJSON, CommandEndConversation, `null`, nil, 0},
		{"json string with blanks", `" {\"type\": \"Escalate\", \"context\": {\"EscalateToAgent\": 1}} "`,
			TagsJSON, CommandEscalate, `{"EscalateToAgent":1}`, nil, 0},
		{"json string, type in lower case", `"{\"type\":\"endconversation\"}"`, TagsJSON, CommandEndConversation, `null`, nil, 1},
		{"json string, extra member", `"{\"type\":\"Escalate\",\"context\":{},\"x\":1}"`, TagsJSON, CommandEscalate, `null`, nil, 1},
		{"object", `{"type":"Escalate","context":{"a":"b"}}`, TagsObject, CommandEscalate, `{"a":"b"}`, nil, 1},
		{"array", `["ChannelId-lcw","FromCustomer"]`, TagsArray, "", "", []string{"ChannelId-lcw", "FromCustomer"}, 0},
		{"empty array", `[]`, TagsArray, "", "", []string{}, 0},
		{"array in a string", `"[\"ChannelId-lcw\"]"`, TagsArray, "", "", []string{"ChannelId-lcw"}, 1},
		{"comma", `"ChannelId-lcw,OmnichannelContextMessage,Hidden"`, TagsComma, "", "",
			[]string{"ChannelId-lcw", LabelContextMessage, LabelHidden}, 0},
		{"comma with blanks and empties", `" a , ,b,"`, TagsComma, "", "", []string{"a", "b"}, 0},
		{"one label", `"Hidden"`, TagsComma, "", "", []string{"Hidden"}, 0},
		{"empty string", `""`, TagsComma, "", "", []string{}, 0},
		{"bracket that is not an array", `"[not json"`, TagsComma, "", "", []string{"[not json"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tags, notes, err := ParseTags(json.RawMessage(tc.raw))
			require.NoError(t, err)
			require.Len(t, notes, tc.notes, "%v", notes)
			require.Equal(t, tc.shape, tags.Shape)
			if tc.command == "" {
				require.Nil(t, tags.Command)
				require.Equal(t, tc.labels, tags.Labels)
				return
			}
			require.Equal(t, tc.command, tags.Command.Type)
			b, err := json.Marshal(tags.Command.Context)
			require.NoError(t, err)
			require.JSONEq(t, tc.ctx, string(b))
		})
	}
}

func TestParseTagsAbsent(t *testing.T) {
	for _, raw := range []string{``, `null`, ` null `} {
		tags, notes, err := ParseTags(json.RawMessage(raw))
		require.NoError(t, err)
		require.Nil(t, tags)
		require.Nil(t, notes)
	}
}

func TestParseTagsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      error
	}{
		{"unknown command", `"{\"type\":\"Transfer\"}"`, ErrUnknownCommand},
		{"command without type", `"{\"context\":{}}"`, ErrMalformed},
		{"type not a string", `"{\"type\":1}"`, ErrMalformed},
		{"truncated command", `"{\"type\":\"Escalate\""`, ErrMalformed},
		{"context not an object", `"{\"type\":\"Escalate\",\"context\":[1]}"`, ErrMalformed},
		{"array of numbers", `[1,2]`, ErrMalformed},
		{"number", `5`, ErrMalformed},
		{"object without type", `{"context":{}}`, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseTags(json.RawMessage(tc.raw))
			require.ErrorIs(t, err, tc.want)
			var te *TagsError
			require.ErrorAs(t, err, &te)
			require.Contains(t, err.Error(), "handoff: channelData.tags")
		})
	}
}

func TestFormatCommand(t *testing.T) {
	s, err := FormatCommand(CommandEscalate, Variables{"IDNumber": Integer(101), "BotHandoffTopic": String("CreditCard")})
	require.NoError(t, err)
	require.Equal(t, `{"type":"Escalate","context":{"BotHandoffTopic":"CreditCard","IDNumber":101}}`, s)
	s, err = FormatCommand(CommandEndConversation, nil)
	require.NoError(t, err)
	require.Equal(t, `{"type":"EndConversation","context":{}}`, s, "the documented end command")
	s, err = FormatCommand(CommandEscalate, Variables{"Url": String("a<b>&c")})
	require.NoError(t, err)
	require.Equal(t, `{"type":"Escalate","context":{"Url":"a<b>&c"}}`, s, "no HTML escaping, as JSON.stringify and Newtonsoft write")
}

func TestTagsHas(t *testing.T) {
	tags := &Tags{Shape: TagsComma, Labels: []string{"Hidden"}}
	require.True(t, tags.Has("Hidden"))
	require.False(t, tags.Has("hidden"), "labels compare case-exactly")
	require.False(t, (*Tags)(nil).Has("Hidden"))
}
