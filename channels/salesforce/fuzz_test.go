package salesforce

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzReadSSE: any byte stream is read without panic; every event dispatched has a type and an
// id without NUL, and a data line ("data" alone is an empty one) was in the stream.
func FuzzReadSSE(f *testing.F) {
	f.Add([]byte("id: 1\nevent: CONVERSATION_MESSAGE\ndata: {}\n\n"), "0")
	f.Add([]byte(": ping\r\n\r\ndata: a\rdata: b\r\r"), "")
	f.Add([]byte("id\nevent\ndata\n\nretry: 10\n\n"), "9")
	f.Fuzz(func(t *testing.T, stream []byte, last string) {
		_ = readSSE(bytes.NewReader(stream), last, func(ev sseEvent) error {
			if ev.Type == "" || !bytes.Contains(stream, []byte("data")) {
				t.Fatalf("dispatched an empty event %+v", ev)
			}
			if ev.HasID && bytes.IndexByte([]byte(ev.ID), 0) >= 0 {
				t.Fatalf("id with NUL: %q", ev.ID)
			}
			return nil
		})
	})
}

// FuzzParseEnvelope: any data is parsed or refused without panic; a parsed envelope has a
// conversation, an entry type, and a payload that is empty or valid JSON, which the typed
// payloads decode without panic.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"conversationId":"c","conversationEntry":{"entryType":"Message","entryPayload":"{\"abstractMessage\":{\"staticContent\":{\"text\":\"hi\"}}}","sender":{"role":"Agent"}}}`))
	f.Add([]byte(`{"conversationId":"c","conversationEntry":{"entryType":"ParticipantChanged","entryPayload":{"entries":[{"operation":"add"}]}}}`))
	f.Add([]byte(`{"conversationId":"c","conversationEntry":{"entryType":"RoutingResult","entryPayload":"\"x\""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := parseEnvelope(data)
		if err != nil {
			return
		}
		if env.ConversationID == "" || env.Entry.EntryType == "" {
			t.Fatal("parsed without conversation or entry type")
		}
		if p := env.Entry.Payload; len(p) > 0 && !json.Valid(p) {
			t.Fatalf("payload not JSON: %q", p)
		}
		var m messagePayload
		var pp participantPayload
		var r routingPayload
		_ = json.Unmarshal(env.Entry.Payload, &m)
		_ = json.Unmarshal(env.Entry.Payload, &pp)
		_ = json.Unmarshal(env.Entry.Payload, &r)
		_ = r.failed()
	})
}
