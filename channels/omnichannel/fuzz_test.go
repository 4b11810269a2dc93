package omnichannel

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// FuzzInbound drives POST /api/messages with arbitrary bodies and Authorization headers. The
// handler must never panic, must answer one of the statuses the protocol allows, and anything
// but 200 must leave the Hub untouched. Seeds: the recorded context events, a live-chat message
// with a valid token (which reaches the Hub), and broken variants.
func FuzzInbound(f *testing.F) {
	r := newRig(f, rigOptions{quiet: true})
	valid := r.oc.message("fuzz-seed", "hello")
	good, _ := activity.Marshal(valid)
	goodAuth := "Bearer " + r.oc.channelToken(valid.ServiceURL, tokenOpts{})
	f.Add(good, goodAuth)
	f.Add(good, "Bearer "+strings.Repeat("A", 40))
	f.Add([]byte(`{"type":"message","conversation":{"id":"x"},"serviceUrl":"`+r.oc.serviceURL()+`"}`), goodAuth)
	f.Add([]byte(`{"type":"event","serviceUrl":"http://evil/","conversation":{"id":"x"}}`), goodAuth)
	f.Add([]byte(`[]`), "Bearer a.b.c")
	f.Add([]byte(`{"type":`), "")
	f.Add([]byte("{\"type\":\"message\",\"conversation\":{\"id\":\"x\"},\"channelData\":{\"x\":\"\xff\xfe\"},\"serviceUrl\":\""+r.oc.serviceURL()+"\"}"), goodAuth)
	f.Add([]byte("{\"type\":\"message\",\"conversation\":{\"id\":\"x\"},\"value\":\"\xc3\x28\",\"zz\":[\"\x80\"],\"serviceUrl\":\""+r.oc.serviceURL()+"\"}"), goodAuth)
	for _, name := range []string{"livechat-context-event.json", "voice-context-event.json", "applemessagesforbusiness-context-event.json"} {
		b, err := os.ReadFile(filepath.Join(testutil.SharedDir(f), "recordings", "omnichannel", name))
		if err == nil {
			f.Add(b, goodAuth)
		}
	}
	allowed := map[int]bool{200: true, 400: true, 401: true, 413: true, 503: true}
	f.Fuzz(func(t *testing.T, body []byte, auth string) {
		before := r.hubConversations()
		req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, MessagesPath, bytes.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		r.ch.serveMessages(w, req)
		if !allowed[w.Code] {
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body.String())
		}
		if w.Code != http.StatusOK && r.hubConversations() != before {
			t.Fatalf("a refused request (%d) changed the Hub", w.Code)
		}
	})
}

// FuzzDecodeInbound checks the body parser alone: no panic, and what it accepts has what the
// channel relies on.
func FuzzDecodeInbound(f *testing.F) {
	f.Add([]byte(`{"type":"message","conversation":{"id":"c"},"serviceUrl":"https://oc.example/"}`))
	f.Add([]byte(`{"type":"event","name":"startConversation","timestamp":1654211880,"from":{"id":"u","role":1},"conversation":{"id":"c"},"serviceUrl":"http://x/"}`))
	f.Add([]byte(`{"type":"message","conversation":{"id":" "},"serviceUrl":"x"}`))
	f.Add([]byte("{\"type\":\"message\",\"conversation\":{\"id\":\"c\"},\"channelData\":{\"x\":\"\xff\xfe\"},\"serviceUrl\":\"https://oc.example/\"}"))
	f.Add([]byte(`{"type":"message","conversation":{"id":"c"},"text":"\ud800","entities":[{"x":"\udc00"}],"serviceUrl":"https://oc.example/"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := decodeInbound(body)
		if err != nil {
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("a body that is not UTF-8 was accepted: %q", body)
		}
		if a.Type == "" || a.Conversation == nil || strings.TrimSpace(a.Conversation.ID) == "" || checkURL("s", a.ServiceURL) != nil {
			t.Fatalf("accepted an activity the channel cannot use: %q", body)
		}
	})
}

// hubConversations counts the conversations the channel opened: a change means a request
// reached the Hub.
func (r *rig) hubConversations() int { return r.ch.meta.len() }
