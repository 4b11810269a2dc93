package salesforce_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeMIAW is Salesforce Messaging for In-App and Web as escalation.md §5 and
// contact-centers-t2.md §6 describe it, on a loopback server:
//
//   - POST /iamessage/api/v2/authorization/unauthenticated/access-token {orgId,
//     esDeveloperName, capabilitiesVersion:"1", platform:"Web"} → {accessToken, lastEventId}:
//     a new anonymous end user.
//   - POST …/authorization/authenticated/access-token, the same + authorizationType "JWT" and
//     customerIdentityToken: an RS256 JWT verified against the keyset (kid → public key) and
//     the issuer, exp required; sub names the end user (the same sub, the same user).
//   - GET …/authorization/continuation-access-token: a new token for the bearer's user.
//   - POST …/conversation {conversationId: lowercase UUID, esDeveloperName, routingAttributes?}
//     (409 when the id exists: an assumption, MIAW documents no repeat); GET
//     …/conversation/{id} → routingStatus; DELETE …/conversation/{id}?esDeveloperName= closes.
//   - POST …/conversation/{id}/message {message:{id, messageType:"StaticContentMessage",
//     staticContent:{formatType:"Text", text}}, esDeveloperName}; a repeated message id is
//     taken once (an assumption); POST …/entry {entryType, id}; POST …/file multipart
//     messageEntry + fileData (413 past maxFile, 415 for refused types); GET …/entries →
//     {conversationEntries} with entryPayload as an object.
//   - GET /eventrouter/v1/sse with Accept: text/event-stream, Authorization, X-Org-Id (15
//     characters) and Last-Event-Id: the user's events with a larger id are replayed, then new
//     ones streamed; each event is "id:", "event:" and one "data:" line holding the envelope
//     {channelPlatformKey, channelType:"embedded_messaging", channelAddressIdentifier,
//     conversationId, conversationEntry{entryType, entryPayload (a JSON string), sender{role,
//     subject, appType}, senderDisplayName, identifier, clientTimestamp,
//     transcriptedTimestamp}}. The customer's own messages come back as EndUser events.
//
// Agent events are scripted by the test (join, say, file, typing, end, routing failure).
// Faults: the next n matching requests get a status (optionally after being processed), SSE
// streams can be dropped, and one SSE request answered 401.
type fakeMIAW struct {
	t      testing.TB
	srv    *httptest.Server
	org    string
	es     string
	issuer string
	kid    string
	pub    *rsa.PublicKey

	mu      sync.Mutex
	tokens  map[string]*fakeUser // access token → user
	users   map[string]*fakeUser // "anon:n" or "auth:sub" → user
	convs   map[string]*fakeConv
	order   []string // conversation ids, oldest first
	faults  []*fakeFault
	hits    []fakeHit
	drop    chan struct{} // closed to drop every open stream
	sse401  int
	lastIDs []string // Last-Event-Id of each SSE request
	maxFile int
	anon    int
}

type fakeUser struct {
	key      string
	verified bool
	events   []fakeEvent
	wake     chan struct{}
}

type fakeConv struct {
	id       string
	user     *fakeUser
	routing  map[string]any
	messages []fakeMessage
	files    []fakeFile
	typing   int
	status   string
	closed   bool
}

type fakeMessage struct{ ID, Text string }

type fakeFile struct {
	Name, ContentType string
	Data              []byte
}

type fakeEvent struct {
	id   int64
	typ  string
	data []byte
}

type fakeFault struct {
	method, suffix string
	status         int
	retryAfter     string
	n              int
	after          bool // process the request, then answer status
}

type fakeHit struct {
	Method, Path string
	Status       int
	At           time.Time
}

const (
	fakeOrg = "00DXX0000001gPLMAY"
	fakeES  = "Bridge_Deployment"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func newFakeMIAW(t testing.TB, pub *rsa.PublicKey, issuer, kid string) *fakeMIAW {
	f := &fakeMIAW{t: t, org: fakeOrg, es: fakeES, issuer: issuer, kid: kid, pub: pub,
		tokens: map[string]*fakeUser{}, users: map[string]*fakeUser{}, convs: map[string]*fakeConv{},
		drop: make(chan struct{}), maxFile: 5 << 20}
	mux := http.NewServeMux()
	api := "/iamessage/api/v2"
	mux.HandleFunc("POST "+api+"/authorization/unauthenticated/access-token", f.unauthToken)
	mux.HandleFunc("POST "+api+"/authorization/authenticated/access-token", f.authToken)
	mux.HandleFunc("GET "+api+"/authorization/continuation-access-token", f.continuation)
	mux.HandleFunc("POST "+api+"/conversation", f.create)
	mux.HandleFunc("GET "+api+"/conversation/{id}", f.read)
	mux.HandleFunc("DELETE "+api+"/conversation/{id}", f.close)
	mux.HandleFunc("POST "+api+"/conversation/{id}/message", f.message)
	mux.HandleFunc("POST "+api+"/conversation/{id}/entry", f.entry)
	mux.HandleFunc("POST "+api+"/conversation/{id}/file", f.file)
	mux.HandleFunc("GET "+api+"/conversation/{id}/entries", f.entries)
	mux.HandleFunc("GET /eventrouter/v1/sse", f.sse)
	f.srv = httptest.NewServer(f.faulty(mux))
	t.Cleanup(func() { f.dropStreams(); f.srv.Close() })
	return f
}

func (f *fakeMIAW) URL() string { return f.srv.URL }

// faulty answers scripted faults and records every request.
func (f *fakeMIAW) faulty(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		var hit *fakeFault
		for _, ft := range f.faults {
			if ft.n > 0 && ft.method == r.Method && strings.HasSuffix(r.URL.Path, ft.suffix) {
				ft.n--
				hit = ft
				break
			}
		}
		f.mu.Unlock()
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		switch {
		case hit != nil && hit.after:
			next.ServeHTTP(discard{}, r)
			fallthrough
		case hit != nil:
			if hit.retryAfter != "" {
				w.Header().Set("Retry-After", hit.retryAfter)
			}
			rec.WriteHeader(hit.status)
			_, _ = rec.Write([]byte(`{"message":"scripted fault"}`))
		default:
			next.ServeHTTP(rec, r)
		}
		f.mu.Lock()
		f.hits = append(f.hits, fakeHit{Method: r.Method, Path: r.URL.Path, Status: rec.status, At: time.Now()})
		f.mu.Unlock()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }
func (s *statusRecorder) Flush() {
	if fl, ok := s.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// fail makes the next n requests whose path ends in suffix answer status (after processing
// them when after is set).
func (f *fakeMIAW) fail(method, suffix string, status int, retryAfter string, n int, after bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &fakeFault{method: method, suffix: suffix, status: status, retryAfter: retryAfter, n: n, after: after})
}

// heal clears the scripted faults.
func (f *fakeMIAW) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

func (f *fakeMIAW) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeMIAW) refuse(w http.ResponseWriter, status int, msg string) {
	f.writeJSON(w, status, map[string]string{"message": msg})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tokenBody checks the common fields of a token request.
func (f *fakeMIAW) tokenBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var b map[string]any
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		f.refuse(w, 400, "bad json")
		return nil, false
	}
	if b["orgId"] != f.org || b["esDeveloperName"] != f.es || b["capabilitiesVersion"] != "1" || b["platform"] != "Web" {
		f.refuse(w, 400, "orgId, esDeveloperName, capabilitiesVersion or platform wrong")
		return nil, false
	}
	return b, true
}

func (f *fakeMIAW) issue(w http.ResponseWriter, u *fakeUser) {
	tok := "tok-" + randomHex(12)
	f.tokens[tok] = u
	last := int64(0)
	if n := len(u.events); n > 0 {
		last = u.events[n-1].id
	}
	f.writeJSON(w, 200, map[string]any{"accessToken": tok, "lastEventId": strconv.FormatInt(last, 10),
		"context": map[string]any{"configuration": map[string]any{"embeddedServiceConfig": map[string]any{}}}})
}

func (f *fakeMIAW) unauthToken(w http.ResponseWriter, r *http.Request) {
	if _, ok := f.tokenBody(w, r); !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.anon++
	u := &fakeUser{key: fmt.Sprint("anon:", f.anon), wake: make(chan struct{})}
	f.users[u.key] = u
	f.issue(w, u)
}

func (f *fakeMIAW) authToken(w http.ResponseWriter, r *http.Request) {
	b, ok := f.tokenBody(w, r)
	if !ok {
		return
	}
	idt, _ := b["customerIdentityToken"].(string)
	if b["authorizationType"] != "JWT" || idt == "" {
		f.refuse(w, 400, "authorizationType JWT and customerIdentityToken required")
		return
	}
	claims := jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(idt, &claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != f.kid {
			return nil, errors.New("unknown kid")
		}
		return f.pub, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(f.issuer), jwt.WithExpirationRequired())
	if err != nil || claims.Subject == "" {
		f.refuse(w, 401, "identity token refused")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users["auth:"+claims.Subject]
	if u == nil {
		u = &fakeUser{key: "auth:" + claims.Subject, verified: true, wake: make(chan struct{})}
		f.users[u.key] = u
	}
	f.issue(w, u)
}

// bearer returns the user of the request's token, or answers 401.
func (f *fakeMIAW) bearer(w http.ResponseWriter, r *http.Request) *fakeUser {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	u := f.tokens[tok]
	f.mu.Unlock()
	if !ok || u == nil {
		f.refuse(w, 401, "invalid token")
		return nil
	}
	return u
}

func (f *fakeMIAW) continuation(w http.ResponseWriter, r *http.Request) {
	u := f.bearer(w, r)
	if u == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issue(w, u)
}

func (f *fakeMIAW) create(w http.ResponseWriter, r *http.Request) {
	u := f.bearer(w, r)
	if u == nil {
		return
	}
	var b struct {
		ConversationID    string         `json:"conversationId"`
		ESDeveloperName   string         `json:"esDeveloperName"`
		RoutingAttributes map[string]any `json:"routingAttributes"`
	}
	if json.NewDecoder(r.Body).Decode(&b) != nil || !uuidRE.MatchString(b.ConversationID) || b.ESDeveloperName != f.es {
		f.refuse(w, 400, "conversationId (lowercase UUID) and esDeveloperName required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.convs[b.ConversationID]; dup {
		f.refuse(w, 409, "conversation exists")
		return
	}
	f.convs[b.ConversationID] = &fakeConv{id: b.ConversationID, user: u, routing: b.RoutingAttributes, status: "INITIAL"}
	f.order = append(f.order, b.ConversationID)
	w.WriteHeader(201)
}

// conv returns the bearer's open conversation {id}, or answers.
func (f *fakeMIAW) conv(w http.ResponseWriter, r *http.Request) *fakeConv {
	u := f.bearer(w, r)
	if u == nil {
		return nil
	}
	f.mu.Lock()
	c := f.convs[r.PathValue("id")]
	f.mu.Unlock()
	if c == nil || c.user != u {
		f.refuse(w, 404, "no such conversation")
		return nil
	}
	return c
}

func (f *fakeMIAW) read(w http.ResponseWriter, r *http.Request) {
	if c := f.conv(w, r); c != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.writeJSON(w, 200, map[string]any{"conversationId": c.id, "routingStatus": c.status})
	}
}

func (f *fakeMIAW) close(w http.ResponseWriter, r *http.Request) {
	c := f.conv(w, r)
	if c == nil {
		return
	}
	if r.URL.Query().Get("esDeveloperName") != f.es {
		f.refuse(w, 400, "esDeveloperName required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !c.closed {
		c.closed = true
		f.emitLocked(c, "CONVERSATION_CLOSE_CONVERSATION", "CloseConversation", endUser(c), "", map[string]any{})
	}
	w.WriteHeader(204)
}

func (f *fakeMIAW) message(w http.ResponseWriter, r *http.Request) {
	c := f.conv(w, r)
	if c == nil {
		return
	}
	var b struct {
		Message struct {
			ID            string `json:"id"`
			MessageType   string `json:"messageType"`
			StaticContent struct {
				FormatType string `json:"formatType"`
				Text       string `json:"text"`
			} `json:"staticContent"`
		} `json:"message"`
		ESDeveloperName string `json:"esDeveloperName"`
	}
	if json.NewDecoder(r.Body).Decode(&b) != nil || b.Message.ID == "" || b.Message.MessageType != "StaticContentMessage" ||
		b.Message.StaticContent.FormatType != "Text" || b.ESDeveloperName != f.es {
		f.refuse(w, 400, "not a StaticContentMessage")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range c.messages {
		if m.ID == b.Message.ID {
			w.WriteHeader(202)
			return
		}
	}
	c.messages = append(c.messages, fakeMessage{ID: b.Message.ID, Text: b.Message.StaticContent.Text})
	f.emitLocked(c, "CONVERSATION_MESSAGE", "Message", endUser(c), "Customer", textPayload(b.Message.ID, b.Message.StaticContent.Text))
	w.WriteHeader(202)
}

func (f *fakeMIAW) entry(w http.ResponseWriter, r *http.Request) {
	c := f.conv(w, r)
	if c == nil {
		return
	}
	var b struct{ EntryType, ID string }
	if json.NewDecoder(r.Body).Decode(&b) != nil || b.ID == "" ||
		(b.EntryType != "TypingStartedIndicator" && b.EntryType != "TypingStoppedIndicator") {
		f.refuse(w, 400, "entryType and id required")
		return
	}
	f.mu.Lock()
	c.typing++
	f.mu.Unlock()
	w.WriteHeader(202)
}

func (f *fakeMIAW) file(w http.ResponseWriter, r *http.Request) {
	c := f.conv(w, r)
	if c == nil {
		return
	}
	if err := r.ParseMultipartForm(16 << 20); err != nil {
		f.refuse(w, 400, "multipart required")
		return
	}
	var entry struct {
		ESDeveloperName string                      `json:"esDeveloperName"`
		Message         struct{ ID, FileID string } `json:"message"`
	}
	if json.Unmarshal([]byte(r.FormValue("messageEntry")), &entry) != nil || entry.Message.ID == "" || entry.Message.FileID == "" || entry.ESDeveloperName != f.es {
		f.refuse(w, 400, "messageEntry with message.id and fileId required")
		return
	}
	fh := r.MultipartForm.File["fileData"]
	if len(fh) != 1 {
		f.refuse(w, 400, "one fileData part required")
		return
	}
	f.storeFile(w, c, entry.Message.ID, fh[0])
}

func (f *fakeMIAW) storeFile(w http.ResponseWriter, c *fakeConv, id string, fh *multipart.FileHeader) {
	ctype := fh.Header.Get("Content-Type")
	if fh.Size > int64(f.maxFile) {
		f.refuse(w, 413, "file too large")
		return
	}
	if strings.HasPrefix(ctype, "application/x-msdownload") {
		f.refuse(w, 415, "unsupported file type")
		return
	}
	rd, _ := fh.Open()
	data, _ := io.ReadAll(rd)
	_ = rd.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range c.messages {
		if m.ID == id {
			w.WriteHeader(202)
			return
		}
	}
	c.messages = append(c.messages, fakeMessage{ID: id})
	c.files = append(c.files, fakeFile{Name: fh.Filename, ContentType: ctype, Data: data})
	f.emitLocked(c, "CONVERSATION_MESSAGE", "Message", endUser(c), "Customer", filePayload(id, fh.Filename, ctype, f.srv.URL+"/files/"+id))
	w.WriteHeader(202)
}

// entries lists the conversation's entries with payloads as objects (SFS
// messagingService.js), oldest first.
func (f *fakeMIAW) entries(w http.ResponseWriter, r *http.Request) {
	c := f.conv(w, r)
	if c == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []any
	for _, ev := range c.user.events {
		var env struct {
			ConversationID string         `json:"conversationId"`
			Entry          map[string]any `json:"conversationEntry"`
		}
		_ = json.Unmarshal(ev.data, &env)
		if env.ConversationID != c.id {
			continue
		}
		var p any
		_ = json.Unmarshal([]byte(env.Entry["entryPayload"].(string)), &p)
		env.Entry["entryPayload"] = p
		out = append(out, env.Entry)
	}
	if len(out) > 50 {
		out = out[len(out)-50:]
	}
	f.writeJSON(w, 200, map[string]any{"conversationEntries": out})
}
