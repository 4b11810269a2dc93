package omnichannel

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
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// fakeOC is Dynamics 365 Omnichannel as a bot application user sees it, following the
// documented protocol:
//
//   - As a Bot Framework channel (botframework.md §4.1) it signs each POST to the bot's
//     messaging endpoint with an RS256 JWT (iss https://api.botframework.com, aud = the bot's
//     app id, serviceurl = the activity's serviceUrl, kid header), and publishes OpenID
//     metadata whose jwks_uri serves its key with an "endorsements" list of channel ids.
//   - As Entra ID (botframework.md §4.2) it serves the client-credentials token endpoint
//     /{tenant}/oauth2/v2.0/token (client_secret, or an RS256 client assertion) and issues the
//     tokens the bot sends back (aud https://api.botframework.com, appid = the client id).
//   - As the Connector at its serviceUrl (botframework.md §2) it takes POST
//     /v3/conversations/{id}/activities[/{replyToId}] with such a token, and answers
//     ResourceResponse {id} or the ErrorResponse shape. It enforces Omnichannel's 28 KB message
//     limit (escalation.md §1) and de-duplicates activities by id (A2033: receivers MAY).
//   - It sends the Live Chat context event of the D365 docs
//     (shared/recordings/omnichannel/livechat-context-event.json, bot-context-json-samples.md)
//     and live-chat-shaped customer messages: channelId "lcw", tags
//     ["ChannelId-lcw","FromCustomer"] (escalation.md §1, omnichannel-chat-sdk).
//
// It records every call, and can be told to fail the next calls with a status (429 with
// Retry-After, 500, 502…), having processed them or not.
type fakeOC struct {
	t       testing.TB
	srv     *httptest.Server
	key     *rsa.PrivateKey // signs channel tokens; published in the JWKS
	kid     string
	aadKey  *rsa.PrivateKey // signs the tokens the token endpoint issues
	appID   string
	secret  string
	certPub *rsa.PublicKey // accepted for client assertions, when set

	mu           sync.Mutex
	endorsements []string
	bridgeURL    string // the bridge's messaging endpoint
	attempts     []ocAttempt
	accepted     []*activity.Activity
	ids          map[string]bool
	faults       []fault
	tokens       int      // tokens issued
	secrets      []string // every token issued or signed, for the redaction test
	certX5t      string   // the x5t a client assertion must carry, when set
	tokenTTL     time.Duration
	seq          int
}

// ocAttempt is one call to the Connector at the fake's serviceUrl.
type ocAttempt struct {
	At        time.Time
	ConvID    string
	ReplyToID string
	Activity  *activity.Activity
	Status    int
	Size      int
}

// fault is how to answer one coming Connector call.
type fault struct {
	status     int
	retryAfter string
	processed  bool // take the activity before failing: the answer was lost on the way back
}

const (
	ocIssuer      = "https://api.botframework.com"
	ocTokenIssuer = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"
	ocAudience    = "https://api.botframework.com"
	customerID    = "965ee9c9-a809-b56c-5498-b116ae3b9e16" // from.id of the recorded context event
)

func newFakeOC(t testing.TB, appID, secret string) *fakeOC {
	t.Helper()
	f := &fakeOC{
		t: t, key: testKey(t), kid: "oc-key-1", aadKey: testKey(t), appID: appID, secret: secret,
		endorsements: []string{"lcw", "omnichannel", "telephony", "msteams"},
		ids:          map[string]bool{}, tokenTTL: time.Hour,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/.well-known/openidconfiguration", f.metadata)
	mux.HandleFunc("GET /v1/.well-known/keys", f.keys)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.token)
	mux.HandleFunc("POST /v3/conversations/{path...}", f.connector)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOC) serviceURL() string  { return f.srv.URL + "/" }
func (f *fakeOC) metadataURL() string { return f.srv.URL + "/v1/.well-known/openidconfiguration" }
func (f *fakeOC) tokenURL() string    { return f.srv.URL + "/botframework.com/oauth2/v2.0/token" }

func (f *fakeOC) metadata(w http.ResponseWriter, _ *http.Request) {
	writeTestJSON(w, http.StatusOK, map[string]any{
		"issuer": ocIssuer, "jwks_uri": f.srv.URL + "/v1/.well-known/keys",
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (f *fakeOC) keys(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	end := slices.Clone(f.endorsements)
	key, kid := f.key, f.kid
	f.mu.Unlock()
	pub := key.PublicKey
	writeTestJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "kid": kid,
		"n":            base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		"endorsements": end,
	}}})
}

// token is the client-credentials grant (botframework.md §4.2).
func (f *fakeOC) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		writeTestJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	form := r.PostForm
	ok := form.Get("client_id") == f.appID && form.Get("scope") == ocAudience+"/.default"
	f.mu.Lock()
	certPub, certX5t := f.certPub, f.certX5t
	f.mu.Unlock()
	switch {
	case form.Get("client_secret") != "":
		ok = ok && form.Get("client_secret") == f.secret
	case form.Get("client_assertion") != "" && certPub != nil:
		// RFC 7523 as Entra ID takes it: RS256, aud = the token endpoint, iss = sub = the
		// client id, and the certificate's thumbprint as x5t.
		t, err := jwt.Parse(form.Get("client_assertion"), func(*jwt.Token) (any, error) { return certPub, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(f.tokenURL()), jwt.WithIssuer(f.appID),
			jwt.WithSubject(f.appID), jwt.WithExpirationRequired())
		ok = ok && err == nil && t.Header["x5t"] == certX5t &&
			form.Get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	default:
		ok = false
	}
	if !ok {
		writeTestJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	f.mu.Lock()
	f.tokens++
	ttl := f.tokenTTL
	f.mu.Unlock()
	now := time.Now()
	tok := f.sign(jwt.MapClaims{"iss": ocTokenIssuer, "aud": ocAudience, "appid": f.appID, "ver": "1.0",
		"nbf": now.Unix(), "exp": now.Add(ttl).Unix()}, f.aadKey, "aad-key")
	f.mu.Lock()
	f.secrets = append(f.secrets, tok)
	f.mu.Unlock()
	writeTestJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": int(ttl / time.Second), "access_token": tok})
}

// connector takes POST /v3/conversations/{id}/activities[/{replyToId}].
func (f *fakeOC) connector(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code string) {
		writeTestJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": code}})
	}
	raw := strings.TrimPrefix(r.RequestURI, "/v3/conversations/")
	segs := strings.Split(raw, "/")
	if len(segs) < 2 || len(segs) > 3 || segs[1] != "activities" {
		fail(http.StatusNotFound, "NotFound")
		return
	}
	convID, err1 := url.PathUnescape(segs[0])
	var replyTo string
	var err2 error
	if len(segs) == 3 {
		replyTo, err2 = url.PathUnescape(segs[2])
	}
	if err1 != nil || err2 != nil {
		fail(http.StatusBadRequest, "BadArgument")
		return
	}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return &f.aadKey.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(ocAudience), jwt.WithIssuer(ocTokenIssuer), jwt.WithExpirationRequired())
	if err != nil || claims["appid"] != f.appID {
		fail(http.StatusUnauthorized, "Unauthorized")
		return
	}
	body, _ := io.ReadAll(r.Body)
	a, err := activity.Decode(body)
	at := ocAttempt{At: time.Now(), ConvID: convID, ReplyToID: replyTo, Activity: a, Size: len(body)}
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() { f.attempts = append(f.attempts, at) }()
	switch {
	case err != nil:
		at.Status = http.StatusBadRequest
		fail(at.Status, "BadSyntax")
		return
	case len(body) > handoff.OmnichannelMaxMessageBytes:
		at.Status = http.StatusRequestEntityTooLarge
		fail(at.Status, "MessageSizeTooBig")
		return
	case a.Conversation == nil || a.Conversation.ID != convID:
		at.Status = http.StatusBadRequest
		fail(at.Status, "BadArgument")
		return
	}
	if len(f.faults) > 0 {
		ft := f.faults[0]
		f.faults = f.faults[1:]
		if ft.processed {
			f.take(a)
		}
		at.Status = ft.status
		if ft.retryAfter != "" {
			w.Header().Set("Retry-After", ft.retryAfter)
		}
		fail(ft.status, http.StatusText(ft.status))
		return
	}
	f.take(a)
	at.Status = http.StatusOK
	f.seq++
	writeTestJSON(w, http.StatusOK, map[string]string{"id": fmt.Sprintf("oc-activity-%d", f.seq)})
}

// take records an activity once per id. The caller holds f.mu.
func (f *fakeOC) take(a *activity.Activity) {
	if a.ID != "" {
		if f.ids[a.ID] {
			return
		}
		f.ids[a.ID] = true
	}
	f.accepted = append(f.accepted, a)
}

// failNext makes the next n Connector calls fail with status.
func (f *fakeOC) failNext(n, status int, retryAfter string, processed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.faults = append(f.faults, fault{status: status, retryAfter: retryAfter, processed: processed})
	}
}

// rotate signs channel tokens with a new key under a new kid from now on.
func (f *fakeOC) rotate(kid string) {
	key := testKey(f.t)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key, f.kid = key, kid
}

// signer returns the current channel-token key and kid.
func (f *fakeOC) signer() (*rsa.PrivateKey, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.key, f.kid
}

func testKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

func (f *fakeOC) setEndorsements(e []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endorsements = e
}

// tokenOpts change the token of one post.
type tokenOpts struct {
	key    *rsa.PrivateKey
	kid    string
	claims func(jwt.MapClaims)
	header string // the whole Authorization header, when set
}

func (f *fakeOC) sign(claims jwt.MapClaims, key *rsa.PrivateKey, kid string) string {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		panic("fake omnichannel: sign: " + err.Error()) // an RSA key always signs; not require: handlers run off the test goroutine
	}
	return s
}

// channelToken is the token Omnichannel signs for a POST to the bot.
func (f *fakeOC) channelToken(serviceURL string, o tokenOpts) string {
	now := time.Now()
	claims := jwt.MapClaims{"iss": ocIssuer, "aud": f.appID, "serviceurl": serviceURL, "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if o.claims != nil {
		o.claims(claims)
	}
	key, kid := f.signer()
	if o.key != nil {
		key = o.key
	}
	if o.kid != "" {
		kid = o.kid
	}
	return f.sign(claims, key, kid)
}

// post sends an activity to the bridge's messaging endpoint and returns the status and body.
func (f *fakeOC) post(a *activity.Activity, o tokenOpts) (int, string) {
	f.t.Helper()
	body, err := activity.Marshal(a)
	require.NoError(f.t, err)
	return f.postRaw(body, a.ServiceURL, o)
}

func (f *fakeOC) postRaw(body []byte, serviceURL string, o tokenOpts) (int, string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.bridge(), bytes.NewReader(body))
	require.NoError(f.t, err)
	req.Header.Set("Content-Type", "application/json")
	auth := "Bearer " + f.channelToken(serviceURL, o)
	if o.header != "" {
		auth = o.header
		if o.header == "-" {
			auth = ""
		}
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
		f.mu.Lock()
		f.secrets = append(f.secrets, strings.TrimPrefix(auth, "Bearer "))
		f.mu.Unlock()
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fakeOC) bridge() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bridgeURL
}

// mustPost posts and requires 200.
func (f *fakeOC) mustPost(a *activity.Activity) {
	f.t.Helper()
	status, body := f.post(a, tokenOpts{})
	require.Equal(f.t, http.StatusOK, status, "bridge answered %s", body)
}

// contextEvent is the recorded Live Chat context event, addressed as Omnichannel sends it to
// the bot: the recording omits conversation, serviceUrl and recipient, which a real post has.
func (f *fakeOC) contextEvent(convID string) *activity.Activity {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.SharedDir(f.t), "recordings", "omnichannel", "livechat-context-event.json"))
	require.NoError(f.t, err)
	a, err := activity.Decode(b)
	require.NoError(f.t, err)
	a.Conversation = &activity.ConversationAccount{ID: convID}
	a.ServiceURL = f.serviceURL()
	a.Recipient = &activity.ChannelAccount{ID: f.appID, Name: "Bot app user"}
	return a
}

// message is a customer's Live Chat message.
func (f *fakeOC) message(convID, text string) *activity.Activity {
	f.mu.Lock()
	f.seq++
	id := fmt.Sprintf("%d", 1654211880100+f.seq)
	f.mu.Unlock()
	return &activity.Activity{
		Type: activity.TypeMessage, ID: id, Timestamp: activity.NewTime(time.Now()), ChannelID: "lcw",
		ServiceURL:   f.serviceURL(),
		From:         &activity.ChannelAccount{ID: customerID, Name: "Customer", Role: activity.RoleUser},
		Conversation: &activity.ConversationAccount{ID: convID},
		Recipient:    &activity.ChannelAccount{ID: f.appID, Name: "Bot app user"},
		Locale:       "en-US", TextFormat: "plain", Text: text,
		ChannelData: json.RawMessage(`{"tags":["ChannelId-lcw","FromCustomer"],"metadata":{"deliveryMode":"bridged"}}`),
	}
}

// got returns the activities the fake took for an Omnichannel conversation, once per id.
func (f *fakeOC) got(convID string) []*activity.Activity {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*activity.Activity
	for _, a := range f.accepted {
		if a.Conversation != nil && a.Conversation.ID == convID {
			out = append(out, a)
		}
	}
	return out
}

// calls returns every Connector call for a conversation.
func (f *fakeOC) calls(convID string) []ocAttempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ocAttempt
	for _, a := range f.attempts {
		if a.ConvID == convID {
			out = append(out, a)
		}
	}
	return out
}

// commands returns the taken activities carrying an Omnichannel command of type typ.
func (f *fakeOC) commands(convID, typ string) []*activity.Activity {
	var out []*activity.Activity
	for _, a := range f.got(convID) {
		if cmd := commandOf(a); cmd != nil && cmd.Type == typ {
			out = append(out, a)
		}
	}
	return out
}

// texts returns the texts of the customer-visible messages taken (no commands).
func (f *fakeOC) texts(convID string) []string {
	var out []string
	for _, a := range f.got(convID) {
		if a.Type == activity.TypeMessage && commandOf(a) == nil {
			out = append(out, a.Text)
		}
	}
	return out
}

// commandOf returns the Omnichannel command an activity carries, or nil.
func commandOf(a *activity.Activity) *handoff.Command {
	tags, _, err := handoff.ParseTags(a.ChannelDataField("tags"))
	if err != nil || tags == nil {
		return nil
	}
	return tags.Command
}

// deliveryMode returns channelData.deliveryMode.
func deliveryMode(a *activity.Activity) string {
	var s string
	_ = json.Unmarshal(a.ChannelDataField("deliveryMode"), &s)
	return s
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
