package dynamics

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// FakeMessaging is the Dynamics 365 Messaging API (custom channel "MessagingAPI") as a back end
// sees it, following shared/reference/contact-centers-t2.md §1 and §7 ("A protocol-faithful
// fake must"):
//
//   - Entra ID: POST /{tenant}/oauth2/v2.0/token, a form with grant_type=client_credentials,
//     client_id, client_secret and a scope https://{orgid-without-dashes}-c.{zone}.dynamics.com/.default;
//     answers {token_type, expires_in, access_token} or an OAuth error (RFC 6749 §5.2).
//   - Every API call needs Authorization: Bearer <a token it issued, not expired> (401),
//     organization-id (400 code 30001 when absent or another org) and channel-id (400 30002);
//     only GET and POST; every answer carries x-ms-correlation-id; refusals are RFC 7807
//     application/problem+json with a numeric "code" (the member's name is this fake's
//     choice: the docs list the codes, not the member).
//   - POST /api/v1.0/consumer/conversation/create: ≤100 conversationcontext entries (30010),
//     each {isDisplayable: bool, value}; customercontext fields ≤200 characters; startmessage
//     ≤27 KB; answers {conversationId GUID, isNew, messageId 13-digit epoch ms}. A repeated
//     conversationrequestid, or the same active customerid, returns the existing conversation
//     with isNew false (the docs say so of customerid; of conversationrequestid it is this
//     fake's reading, an inference). startmessage is kept as rep-only.
//   - POST /api/v1.0/consumer/conversation/{id}: message (channelId must equal the header,
//     text ≤6,000 → 30011, text or attachments → 30016), typing, endOfConversation (closes the
//     conversation), event MessageRead, custom events, unknown event → 400 30003; answers
//     {messageId}; 404 30013 for an unknown or closed conversation.
//   - Faults are scripted per endpoint: 429 with Retry-After, 500, 503, … before processing.
//   - The webhook: the fake's rep posts to {webhook}/v3/conversations/{id}/activities with a
//     Bearer RS256 JWT of the fake's own Entra issuer (iss https://login.microsoftonline.com/{tenant}/v2.0,
//     aud = the app, kid), published through OpenID metadata and a JWKS; a non-200 answer or
//     no answer within 10 s is a failure and the call is made again, three tries in all, then
//     dropped (CC api/api-conversation-webhook.md).
type FakeMessaging struct {
	t        testing.TB
	Srv      *httptest.Server
	Tenant   string
	OrgID    string
	Channel  string
	ClientID string
	Secret   string
	Scope    string
	Audience string
	key      *rsa.PrivateKey
	kid      string

	mu         sync.Mutex
	tokens     map[string]time.Time // issued access tokens -> expiry
	TokenTTL   time.Duration
	TokenCalls int
	convs      map[string]*FakeConversation
	byRequest  map[string]string
	Creates    []CreateCall // every create the fake processed, in order
	Calls      []Call       // every API call, in order (faulted ones included)
	faults     map[string][]Fault
	Unlinked   bool   // the channel is not linked to a workstream: creates get 400 30014
	Webhook    string // the bridge's msdyn_webhookurl
	Deliveries []Delivery
	RetryWait  time.Duration // between webhook tries; default 200ms
}

// FakeConversation is one conversation of the fake.
type FakeConversation struct {
	ID           string
	Open         bool
	StartMessage string // rep-only
	Messages     []map[string]any
	Typing       int
	Ended        bool // the customer's endOfConversation arrived
}

// CreateCall is one processed create: its body as sent.
type CreateCall struct {
	Body map[string]any
	Resp createResponse
}

// Call is one API call: endpoint, status answered, when.
type Call struct {
	Path       string
	Status     int
	RetryAfter string // the Retry-After answered, if any
	At         time.Time
}

// Fault is a scripted refusal of the next call to an endpoint ("create" or "message").
type Fault struct {
	Status     int
	RetryAfter string
	Pass       bool // not a fault: this call is processed (to fault a later one)
}

// Delivery is one webhook try of the fake's rep.
type Delivery struct {
	Kind   string
	Status int // 0 when no answer came
	Try    int
}

const (
	fakeTenant   = "11111111-2222-3333-4444-555555555555"
	fakeOrg      = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	fakeChannel  = "12345678-90ab-cdef-1234-567890abcdef"
	fakeClient   = "99999999-8888-7777-6666-555555555555"
	fakeSecret   = "dyn-client-secret-never-logged"
	fakeAudience = "api://bfbridge-webhook"
)

// NewFakeMessaging starts the fake on loopback until the test ends.
func NewFakeMessaging(t testing.TB) *FakeMessaging {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f := &FakeMessaging{
		t: t, Tenant: fakeTenant, OrgID: fakeOrg, Channel: fakeChannel, ClientID: fakeClient, Secret: fakeSecret,
		Scope: "https://aaaaaaaabbbbccccddddeeeeeeeeeeee-c.crm.dynamics.com/.default", Audience: fakeAudience,
		key: key, kid: "fake-kid-1", tokens: map[string]time.Time{}, TokenTTL: time.Hour,
		convs: map[string]*FakeConversation{}, byRequest: map[string]string{}, faults: map[string][]Fault{},
		RetryWait: 200 * time.Millisecond,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.serveToken)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", f.serveMetadata)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", f.serveKeys)
	mux.HandleFunc("/api/v1.0/consumer/", f.serveAPI)
	f.Srv = httptest.NewServer(mux)
	t.Cleanup(f.Srv.Close)
	return f
}

// Config is a channel configuration pointed at the fake.
func (f *FakeMessaging) Config() Config {
	return Config{
		Enabled: true, BaseURL: f.Srv.URL, OrganizationID: f.OrgID, ChannelID: f.Channel, TenantID: f.Tenant,
		ClientID: f.ClientID, ClientSecret: f.Secret, Scope: f.Scope,
		TokenURL:                 f.Srv.URL + "/" + f.Tenant + "/oauth2/v2.0/token",
		WebhookIssuer:            f.Issuer(),
		WebhookOpenIDMetadataURL: f.Srv.URL + "/" + f.Tenant + "/v2.0/.well-known/openid-configuration",
		WebhookAudience:          f.Audience,
		BackoffMin:               20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
	}
}

// Issuer is the iss of the fake's webhook tokens.
func (f *FakeMessaging) Issuer() string {
	return "https://login.microsoftonline.com/" + f.Tenant + "/v2.0"
}

// FailNext scripts refusals of the next calls to endpoint ("create" or "message").
func (f *FakeMessaging) FailNext(endpoint string, faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[endpoint] = append(f.faults[endpoint], faults...)
}

var scopeRE = regexp.MustCompile(`^https://[0-9a-f]{32}-c\.[a-z0-9]+\.dynamics\.com/\.default$`)

func (f *FakeMessaging) serveToken(w http.ResponseWriter, r *http.Request) {
	oauthErr := func(status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":%q,"error_description":"refused by the fake"}`, code)
	}
	if r.PathValue("tenant") != f.Tenant || r.ParseForm() != nil {
		oauthErr(400, "invalid_request")
		return
	}
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		oauthErr(400, "unsupported_grant_type")
	case r.PostForm.Get("client_id") != f.ClientID || r.PostForm.Get("client_secret") != f.Secret:
		oauthErr(401, "invalid_client")
	case !scopeRE.MatchString(r.PostForm.Get("scope")):
		oauthErr(400, "invalid_scope")
	default:
		tok := randomID()
		f.mu.Lock()
		f.tokens[tok] = time.Now().Add(f.TokenTTL)
		f.TokenCalls++
		ttl := int(f.TokenTTL / time.Second)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":%d,"ext_expires_in":%d,"access_token":%q}`, ttl, ttl, tok)
	}
}

// problem answers an RFC 7807 refusal with the API's code.
func problem(w http.ResponseWriter, status, code int, title string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": status, "code": code})
}

// serveAPI checks what every call needs, plays the scripted faults, then routes.
func (f *FakeMessaging) serveAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-ms-correlation-id", randomID())
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	defer func() {
		f.mu.Lock()
		f.Calls = append(f.Calls, Call{Path: r.URL.Path, Status: rec.status, RetryAfter: w.Header().Get("Retry-After"), At: time.Now()})
		f.mu.Unlock()
	}()
	w = rec
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		problem(w, 405, CodeUnsupported, "method not allowed")
		return
	}
	if !f.authorized(r) {
		problem(w, 401, 0, "unauthorized")
		return
	}
	if r.Header.Get("organization-id") != f.OrgID {
		problem(w, 400, CodeBadOrganization, "invalid organization id")
		return
	}
	if r.Header.Get("channel-id") != f.Channel {
		problem(w, 400, CodeBadChannel, "invalid channel id")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/api/v1.0/consumer")
	endpoint := "message"
	if path == "/conversation/create" {
		endpoint = "create"
	}
	if ft, ok := f.takeFault(endpoint); ok && !ft.Pass {
		if ft.RetryAfter != "" {
			w.Header().Set("Retry-After", ft.RetryAfter)
		}
		problem(w, ft.Status, 0, http.StatusText(ft.Status))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		problem(w, 400, CodeMalformedBody, "unreadable body")
		return
	}
	switch {
	case endpoint == "create" && r.Method == http.MethodPost:
		f.create(w, body)
	case strings.HasPrefix(path, "/conversation/") && r.Method == http.MethodPost:
		f.post(w, strings.TrimPrefix(path, "/conversation/"), body)
	default:
		problem(w, 400, CodeUnsupported, "unsupported operation")
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func (f *FakeMessaging) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, known := f.tokens[tok]
	return ok && known && time.Now().Before(exp)
}

func (f *FakeMessaging) takeFault(endpoint string) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.faults[endpoint]
	if len(q) == 0 {
		return Fault{}, false
	}
	f.faults[endpoint] = q[1:]
	return q[0], true
}

func (f *FakeMessaging) create(w http.ResponseWriter, body []byte) {
	var req map[string]any
	if json.Unmarshal(body, &req) != nil {
		problem(w, 400, CodeMalformedBody, "malformed body")
		return
	}
	f.mu.Lock()
	unlinked := f.Unlinked
	f.mu.Unlock()
	if unlinked {
		problem(w, 400, CodeChannelNotLinked, "channel not linked to a workstream")
		return
	}
	if code, msg := checkCreate(req); code != 0 {
		problem(w, 400, code, msg)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rid, _ := req["conversationrequestid"].(string)
	if id, ok := f.byRequest[rid]; ok && rid != "" && f.convs[id].Open {
		writeJSON(w, createResponse{ConversationID: id, IsNew: false, MessageID: digitsID(epochMS())})
		return
	}
	if cid := customerID(req); cid != "" {
		if id, ok := f.byRequest["customer:"+cid]; ok && f.convs[id].Open {
			writeJSON(w, createResponse{ConversationID: id, IsNew: false, MessageID: digitsID(epochMS())})
			return
		}
	}
	id := newGUID()
	sm, _ := req["startmessage"].(map[string]any)
	msg, _ := sm["message"].(string)
	f.convs[id] = &FakeConversation{ID: id, Open: true, StartMessage: msg}
	f.byRequest[rid] = id
	if cid := customerID(req); cid != "" {
		f.byRequest["customer:"+cid] = id
	}
	resp := createResponse{ConversationID: id, IsNew: true, MessageID: digitsID(epochMS())}
	f.Creates = append(f.Creates, CreateCall{Body: req, Resp: resp})
	writeJSON(w, resp)
}

// checkCreate validates a create body as contact-centers-t2.md §1 states the limits.
func checkCreate(req map[string]any) (int, string) {
	ctx, _ := req["conversationcontext"].(map[string]any)
	if len(ctx) > 100 {
		return CodeTooManyContext, "more than 100 context entries"
	}
	for _, v := range ctx {
		e, ok := v.(map[string]any)
		if _, isBool := e["isDisplayable"].(bool); !ok || !isBool {
			return CodeMalformedBody, "context entry without isDisplayable"
		}
		if _, has := e["value"]; !has {
			return CodeMalformedBody, "context entry without value"
		}
	}
	if cc, ok := req["customercontext"].(map[string]any); ok {
		for _, v := range cc {
			if s, _ := v.(string); utf16Len(s) > 200 {
				return CodeMalformedBody, "customercontext field over 200 characters"
			}
		}
	}
	if sm, ok := req["startmessage"].(map[string]any); ok {
		if s, _ := sm["message"].(string); len(s) > 27*1024 {
			return CodeMalformedBody, "startmessage over 27 KB"
		}
	}
	return 0, ""
}

func customerID(req map[string]any) string {
	cc, _ := req["customercontext"].(map[string]any)
	s, _ := cc["customerid"].(string)
	return s
}

func (f *FakeMessaging) post(w http.ResponseWriter, id string, body []byte) {
	var a map[string]any
	if json.Unmarshal(body, &a) != nil {
		problem(w, 400, CodeMalformedBody, "malformed body")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.convs[id]
	if !ok || !c.Open {
		problem(w, 404, CodeNoSuchConversation, "conversation does not exist")
		return
	}
	if a["channelId"] != f.Channel {
		problem(w, 400, CodeBadChannel, "channelId does not match the channel-id header")
		return
	}
	switch a["type"] {
	case "message":
		text, _ := a["text"].(string)
		atts, _ := a["attachments"].([]any)
		switch {
		case utf16Len(text) > 6000:
			problem(w, 400, CodeTextTooLong, "text over 6000 characters")
			return
		case text == "" && len(atts) == 0:
			problem(w, 400, CodeNoTextOrAttachments, "message without text or attachments")
			return
		}
		c.Messages = append(c.Messages, a)
	case "typing":
		c.Typing++
	case "endOfConversation":
		c.Ended, c.Open = true, false
	case "event":
		if a["name"] != "MessageRead" {
			if cd, _ := a["channelData"].(map[string]any); cd["customEvent"] != true {
				problem(w, 400, CodeUnsupported, "unknown event")
				return
			}
		}
	default:
		problem(w, 400, CodeUnsupported, "unsupported activity type")
		return
	}
	writeJSON(w, map[string]string{"messageId": epochMS()})
}

// Conversation returns a copy of the fake's conversation.
func (f *FakeMessaging) Conversation(id string) FakeConversation {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.convs[id]
	if !ok {
		return FakeConversation{}
	}
	cp := *c
	cp.Messages = append([]map[string]any(nil), c.Messages...)
	return cp
}

// CreateCalls returns the creates processed so far.
func (f *FakeMessaging) CreateCalls() []CreateCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]CreateCall(nil), f.Creates...)
}

// CallLog returns the calls made so far.
func (f *FakeMessaging) CallLog() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.Calls...)
}

// MessageTexts returns the texts of the customer's messages the conversation got, in order.
func (f *FakeMessaging) MessageTexts(id string) []string {
	var out []string
	for _, m := range f.Conversation(id).Messages {
		s, _ := m["text"].(string)
		out = append(out, s)
	}
	return out
}

// --- Entra side of the webhook: metadata, keys, tokens -------------------------------------

func (f *FakeMessaging) serveMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                f.Issuer(),
		"jwks_uri":                              f.Srv.URL + "/" + r.PathValue("tenant") + "/discovery/v2.0/keys",
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (f *FakeMessaging) serveKeys(w http.ResponseWriter, _ *http.Request) {
	pub := f.key.PublicKey
	writeJSON(w, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "kid": f.kid, "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// TokenOpts shape a webhook token, for the refusal tests.
type TokenOpts struct {
	Audience string
	Issuer   string
	Expired  bool
	Forged   bool // signed by another key under the fake's kid
}

// WebhookToken signs the token the fake's webhook calls carry.
func (f *FakeMessaging) WebhookToken(o TokenOpts) string {
	now := time.Now()
	claims := jwt.MapClaims{
		"aud": f.Audience, "iss": f.Issuer(), "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"exp": now.Add(time.Hour).Unix(), "appid": "dynamics-fic", "tid": f.Tenant, "sub": "fic-subject",
	}
	if o.Audience != "" {
		claims["aud"] = o.Audience
	}
	if o.Issuer != "" {
		claims["iss"] = o.Issuer
	}
	if o.Expired {
		claims["iat"], claims["nbf"], claims["exp"] = now.Add(-3*time.Hour).Unix(), now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
	}
	key := f.key
	if o.Forged {
		var err error
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(f.t, err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = f.kid
	s, err := tok.SignedString(key)
	require.NoError(f.t, err)
	return s
}

// --- the rep ---------------------------------------------------------------------------------

// Rep is the fake's rep on one conversation: each action is a webhook call made as Microsoft
// makes them (three tries, 10 s each, then dropped).
type Rep struct {
	f      *FakeMessaging
	ConvID string
	ID     string
	Name   string
	n      int
}

// Rep returns a rep for the conversation.
func (f *FakeMessaging) Rep(convID, name string) *Rep {
	return &Rep{f: f, ConvID: convID, ID: "rep-" + strings.ToLower(strings.ReplaceAll(name, " ", "-")), Name: name}
}

func (r *Rep) nextID() string {
	r.n++
	return fmt.Sprintf("%s-%d-%d", r.ID, time.Now().UnixNano(), r.n)
}

// Event sends a system event the way the samples show it: type message with name and text.
func (r *Rep) Event(name string) (int, string) {
	id := r.nextID()
	return r.f.Deliver(r.ConvID, "event:"+name, map[string]any{
		"type": "message", "id": id, "name": name, "channelId": r.f.Channel,
		"from": map[string]any{"id": r.ID, "name": r.Name}, "conversation": map[string]any{"id": r.ConvID},
		"text": "EventName: **_" + name + "_**",
	}), id
}

// Typing sends the rep's typing as documented (channelId "MessagingApi").
func (r *Rep) Typing() int {
	return r.f.Deliver(r.ConvID, "typing", map[string]any{
		"type": "typing", "channelId": "MessagingApi", "conversation": map[string]any{"id": r.ConvID},
		"recipient": map[string]any{"id": "customer"},
	})
}

// Say sends a rep's markdown message.
func (r *Rep) Say(text string) (int, string) {
	id := r.nextID()
	return r.f.Deliver(r.ConvID, "message", r.Message(id, text)), id
}

// Message is the body of a rep's message.
func (r *Rep) Message(id, text string) map[string]any {
	return map[string]any{
		"type": "message", "id": id, "channelId": r.f.Channel, "from": map[string]any{"id": r.ID, "name": r.Name},
		"conversation": map[string]any{"id": r.ConvID}, "textFormat": "markdown", "text": text,
	}
}

// Deliver makes one webhook call with Microsoft's retries and returns the last status (0: no
// answer). Every try is recorded.
func (f *FakeMessaging) Deliver(convID, kind string, body map[string]any) int {
	return f.DeliverWith(convID, kind, body, f.WebhookToken(TokenOpts{}))
}

// DeliverWith is Deliver with a given token.
func (f *FakeMessaging) DeliverWith(convID, kind string, body map[string]any, token string) int {
	raw, _ := json.Marshal(body)
	f.mu.Lock()
	target := f.Webhook + "/v3/conversations/" + convID + "/activities"
	wait := f.RetryWait
	f.mu.Unlock()
	status := 0
	for try := 1; try <= 3; try++ {
		status = f.tryOnce(target, raw, token)
		f.mu.Lock()
		f.Deliveries = append(f.Deliveries, Delivery{Kind: kind, Status: status, Try: try})
		f.mu.Unlock()
		if status == http.StatusOK {
			return status
		}
		time.Sleep(wait)
	}
	return status
}

func (f *FakeMessaging) tryOnce(target string, raw []byte, token string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(raw))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// --- helpers -----------------------------------------------------------------------------------

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func epochMS() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }

// Heal drops the scripted faults not played yet.
func (f *FakeMessaging) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = map[string][]Fault{}
}

// SetRetryWait sets the wait between the rep's webhook tries.
func (f *FakeMessaging) SetRetryWait(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.RetryWait = d
}

// CloseConversation closes a conversation on the Dynamics side without telling the webhook.
func (f *FakeMessaging) CloseConversation(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.convs[id]; ok {
		c.Open = false
	}
}

// RevokeTokens forgets every token issued: the next call with one gets 401.
func (f *FakeMessaging) RevokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]time.Time{}
}

// Tokens returns how many tokens were issued.
func (f *FakeMessaging) Tokens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.TokenCalls
}

// DeliveryLog returns the webhook tries made so far.
func (f *FakeMessaging) DeliveryLog() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Delivery(nil), f.Deliveries...)
}
