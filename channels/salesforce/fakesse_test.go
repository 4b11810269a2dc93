package salesforce_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The event side of fakeMIAW (escalation.md §5 "SSE", contact-centers-t2.md §6 "Resume").

func (f *fakeMIAW) sse(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Accept") != "text/event-stream" || r.Header.Get("X-Org-Id") != f.org[:15] {
		f.refuse(w, 400, "Accept: text/event-stream and X-Org-Id (15 characters) required")
		return
	}
	f.mu.Lock()
	if f.sse401 > 0 {
		f.sse401--
		f.mu.Unlock()
		f.refuse(w, 401, "token expired")
		return
	}
	f.mu.Unlock()
	u := f.bearer(w, r)
	if u == nil {
		return
	}
	after, _ := strconv.ParseInt(r.Header.Get("Last-Event-Id"), 10, 64)
	f.mu.Lock()
	f.lastIDs = append(f.lastIDs, r.Header.Get("Last-Event-Id"))
	drop := f.drop
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	_, _ = fmt.Fprint(w, ": connected\n\n")
	fl.Flush()
	for {
		f.mu.Lock()
		var pending []fakeEvent
		for _, ev := range u.events {
			if ev.id > after {
				pending = append(pending, ev)
			}
		}
		wake := u.wake
		f.mu.Unlock()
		for _, ev := range pending {
			_, _ = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.id, ev.typ, ev.data)
			after = ev.id
		}
		fl.Flush()
		select {
		case <-wake:
		case <-drop:
			return
		case <-r.Context().Done():
			return
		case <-time.After(5 * time.Second):
			_, _ = fmt.Fprint(w, ": ping\n\n")
		}
	}
}

// dropStreams ends every open stream (the server closes the response).
func (f *fakeMIAW) dropStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.drop)
	f.drop = make(chan struct{})
}

// refuseNextStream answers the next n SSE requests 401.
func (f *fakeMIAW) refuseNextStream(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sse401 += n
}

// emitLocked appends an event for the conversation's user and wakes their streams. The
// entry payload is put in the envelope as a JSON string.
func (f *fakeMIAW) emitLocked(c *fakeConv, typ, entryType string, sender map[string]any, name string, payload any) {
	p, _ := json.Marshal(payload)
	now := time.Now().UnixMilli()
	env := map[string]any{
		"channelPlatformKey": "bridge-" + c.user.key, "channelType": "embedded_messaging",
		"channelAddressIdentifier": "addr-" + f.es, "conversationId": c.id,
		"conversationEntry": map[string]any{
			"entryType": entryType, "entryPayload": string(p), "sender": sender, "senderDisplayName": name,
			"identifier": randomUUID(), "clientTimestamp": now, "transcriptedTimestamp": now,
		},
	}
	data, _ := json.Marshal(env)
	id := int64(1000)
	if n := len(c.user.events); n > 0 {
		id = c.user.events[n-1].id + 1 + int64(len(c.user.events)%3) // ids grow, not always by one
	}
	c.user.events = append(c.user.events, fakeEvent{id: id, typ: typ, data: data})
	close(c.user.wake)
	c.user.wake = make(chan struct{})
}

func randomUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func endUser(c *fakeConv) map[string]any {
	return map[string]any{"role": "EndUser", "subject": c.user.key, "appType": "iamessage"}
}

func agentSender(name string) map[string]any {
	return map[string]any{"role": "Agent", "subject": "005" + strings.ToLower(strings.ReplaceAll(name, " ", "")), "appType": "agent"}
}

func textPayload(id, text string) map[string]any {
	return map[string]any{"abstractMessage": map[string]any{"messageType": "StaticContentMessage", "id": id,
		"staticContent": map[string]any{"formatType": "Text", "text": text}}}
}

func filePayload(id, name, ctype, url string) map[string]any {
	return map[string]any{"abstractMessage": map[string]any{"messageType": "StaticContentMessage", "id": id,
		"staticContent": map[string]any{"formatType": "Attachments", "text": "",
			"attachments": []any{map[string]any{"id": id, "name": name, "mimeType": ctype, "url": url}}}}}
}

// The scripted agent. Each acts on the newest conversation.

func (f *fakeMIAW) only() *fakeConv {
	f.t.Helper()
	if len(f.order) == 0 {
		f.t.Fatal("fake MIAW: no conversation")
	}
	return f.convs[f.order[len(f.order)-1]]
}

// agentJoins: a successful routing result (not an acceptance), then the agent added.
func (f *fakeMIAW) agentJoins(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.only()
	router := map[string]any{"role": "Router", "subject": "router", "appType": "router"}
	f.emitLocked(c, "CONVERSATION_ROUTING_RESULT", "RoutingResult", router, "", map[string]any{"routingType": "Initial", "failureType": "None"})
	c.status = "TRANSFER"
	f.emitLocked(c, "CONVERSATION_PARTICIPANT_CHANGED", "ParticipantChanged", agentSender(name), name,
		map[string]any{"entries": []any{map[string]any{"operation": "add", "participant": agentSender(name), "displayName": name}}})
}

func (f *fakeMIAW) agentSays(name, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emitLocked(f.only(), "CONVERSATION_MESSAGE", "Message", agentSender(name), name, textPayload(randomUUID(), text))
}

func (f *fakeMIAW) agentTyping(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emitLocked(f.only(), "CONVERSATION_TYPING_STARTED_INDICATOR", "TypingStartedIndicator", agentSender(name), name, map[string]any{})
}

func (f *fakeMIAW) agentSendsFile(name, file, url string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emitLocked(f.only(), "CONVERSATION_MESSAGE", "Message", agentSender(name), name, filePayload(randomUUID(), file, "application/pdf", url))
}

// unknownEvent is an event type the bridge must ignore.
func (f *fakeMIAW) unknownEvent() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emitLocked(f.only(), "CONVERSATION_PROGRESS_INDICATOR", "ProgressIndicator", agentSender("x"), "x", map[string]any{"text": "working"})
}

// agentEnds: the agent ends the session (routingStatus NEEDS_ROUTING, then the session
// status changes; its payload's shape is not documented, so it carries none of ours).
func (f *fakeMIAW) agentEnds(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.only()
	c.status = "NEEDS_ROUTING"
	f.emitLocked(c, "CONVERSATION_SESSION_STATUS_CHANGED", "SessionStatusChanged", agentSender(name), name, map[string]any{})
}

func (f *fakeMIAW) routingFails() {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.only()
	router := map[string]any{"role": "Router", "subject": "router", "appType": "router"}
	f.emitLocked(c, "CONVERSATION_ROUTING_RESULT", "RoutingResult", router, "", map[string]any{"routingType": "Initial", "failureType": "RoutingError"})
}

// Accessors for assertions.

type convView struct {
	ID       string
	User     string
	Verified bool
	Routing  map[string]any
	Texts    []string
	Files    []fakeFile
	Typing   int
	Closed   bool
}

func (f *fakeMIAW) conversations() []convView {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []convView
	for _, c := range f.convs {
		v := convView{ID: c.id, User: c.user.key, Verified: c.user.verified, Routing: c.routing, Files: append([]fakeFile(nil), c.files...), Typing: c.typing, Closed: c.closed}
		for _, m := range c.messages {
			if m.Text != "" {
				v.Texts = append(v.Texts, m.Text)
			}
		}
		out = append(out, v)
	}
	return out
}

func (f *fakeMIAW) requests(method, suffix string) []fakeHit {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeHit
	for _, h := range f.hits {
		if h.Method == method && strings.HasSuffix(h.Path, suffix) {
			out = append(out, h)
		}
	}
	return out
}

func (f *fakeMIAW) streamIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lastIDs...)
}

// lastEvent returns the id of the newest event of the newest conversation's user.
func (f *fakeMIAW) lastEvent() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	evs := f.only().user.events
	return evs[len(evs)-1].id
}
