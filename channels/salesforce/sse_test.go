package salesforce

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func collect(t *testing.T, stream, lastID string) ([]sseEvent, error) {
	t.Helper()
	var got []sseEvent
	err := readSSE(strings.NewReader(stream), lastID, func(ev sseEvent) error {
		ev.Data = append([]byte(nil), ev.Data...)
		got = append(got, ev)
		return nil
	})
	return got, err
}

func TestReadSSE(t *testing.T) {
	tests := []struct {
		name, stream, last string
		want               []sseEvent
	}{
		{"one event", "id: 7\nevent: CONVERSATION_MESSAGE\ndata: {}\n\n", "", []sseEvent{{ID: "7", Type: "CONVERSATION_MESSAGE", Data: []byte("{}"), HasID: true}}},
		{"CRLF and CR line ends", "id: 1\r\nevent: A\r\ndata: x\r\n\r\nid: 2\revent: B\rdata: y\r\r", "", []sseEvent{
			{ID: "1", Type: "A", Data: []byte("x"), HasID: true}, {ID: "2", Type: "B", Data: []byte("y"), HasID: true}}},
		{"data lines joined, comments skipped", ": ping\n\ndata: a\n:c\ndata:b\n\n", "", []sseEvent{{Type: "message", Data: []byte("a\nb")}}},
		{"an event without id keeps the last one", "id: 5\ndata: a\n\ndata: b\n\n", "", []sseEvent{
			{ID: "5", Type: "message", Data: []byte("a"), HasID: true}, {ID: "5", Type: "message", Data: []byte("b")}}},
		{"the id before the stream", "data: a\n\n", "42", []sseEvent{{ID: "42", Type: "message", Data: []byte("a")}}},
		{"no data, no event", "id: 9\nevent: X\n\n", "", nil},
		{"an unterminated last event is not dispatched", "data: a\n\ndata: b", "", []sseEvent{{Type: "message", Data: []byte("a")}}},
		{"an id with NUL is ignored", "id: a\x00b\ndata: a\n\n", "1", []sseEvent{{ID: "1", Type: "message", Data: []byte("a")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := collect(t, tc.stream, tc.last)
			require.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestReadSSELineLimit(t *testing.T) {
	_, err := collect(t, "data: "+strings.Repeat("x", maxSSELine+1)+"\n\n", "")
	require.ErrorIs(t, err, errLineTooLong)
}

func TestParseEnvelope(t *testing.T) {
	const env = `{"channelPlatformKey":"k","channelType":"embedded_messaging","channelAddressIdentifier":"a","conversationId":"c1",
		"conversationEntry":{"entryType":"Message","entryPayload":%s,"sender":{"role":"Agent","subject":"005x","appType":"agent"},
		"senderDisplayName":"Alex","identifier":"e1","clientTimestamp":1}}`
	payload := `{"abstractMessage":{"id":"m1","messageType":"StaticContentMessage","staticContent":{"formatType":"Text","text":"hi"}}}`
	for name, p := range map[string]string{"a JSON string (SSE)": jsonString(payload), "an object (entries API)": payload} {
		t.Run(name, func(t *testing.T) {
			e, err := parseEnvelope([]byte(strings.Replace(env, "%s", p, 1)))
			require.NoError(t, err)
			require.Equal(t, "c1", e.ConversationID)
			require.Equal(t, participant{Role: "Agent", Subject: "005x", AppType: "agent"}, e.Entry.Sender)
			require.JSONEq(t, payload, string(e.Entry.Payload))
		})
	}
	for name, bad := range map[string]string{
		"not JSON":               `{`,
		"no conversation":        `{"conversationEntry":{"entryType":"Message"}}`,
		"payload string no JSON": strings.Replace(env, "%s", `"not json"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseEnvelope([]byte(bad))
			require.Error(t, err)
		})
	}
}

func jsonString(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

func TestRoutingFailed(t *testing.T) {
	for ft, want := range map[string]bool{"": false, "None": false, "RoutingError": true, "SubmissionError": true, "Unknown": true} {
		require.Equal(t, want, routingPayload{FailureType: ft}.failed(), ft)
	}
}

func TestFromRep(t *testing.T) {
	for role, want := range map[string]bool{"Agent": true, "Chatbot": true, "System": true, "EndUser": false, "Router": false, "Supervisor": false, "": false} {
		require.Equal(t, want, fromRep(role), role)
	}
}
