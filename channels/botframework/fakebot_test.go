package botframework

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bfbridge/bfbridge/activity"
)

// fakeBot is a Bot Framework bot for tests. It checks the bridge's token the way botbuilder's
// ParameterizedBotFrameworkAuthentication does (botframework.md §4.1: Bearer scheme, issuer,
// RS256/384/512, 300 s clock tolerance, aud = app id, serviceurl = activity.serviceUrl,
// endorsements contain activity.channelId, no skill-looking claims), and answers like CloudAdapter
// (§3): replies on the Connector API before the 200, invoke responses in the body,
// expectReplies buffered in {"activities":[…]}. Its own Connector calls carry a token from the
// bridge's dev token endpoint, as the §8 B credentials factory gets it.
type fakeBot struct {
	t           testing.TB
	appID       string // empty: anonymous
	password    string
	issuer      string
	metadataURL string
	loginURL    string // ToChannelFromBotLoginUrl
	scope       string // ToChannelFromBotOAuthScope
	client      *http.Client

	mu       sync.Mutex
	got      []*activity.Activity // accepted activities, in order
	auths    []string             // the Authorization header of every request
	refused  []string             // why tokens were refused
	replies  []int                // statuses of its Connector calls
	status   int                  // when set, answer this instead of processing
	delay    time.Duration        // wait before answering
	oversize bool                 // answer with a body over the bridge's limit
}

func newFakeBot(t testing.TB) *fakeBot {
	return &fakeBot{t: t, client: &http.Client{Timeout: 10 * time.Second}}
}

// configure points the bot at a bridge, as the §8 B environment does.
func (b *fakeBot) configure(publicURL, appID, password string) {
	b.appID, b.password = appID, password
	b.issuer = DefaultIssuer
	b.metadataURL = publicURL + OpenIDMetadataPath
	b.loginURL = publicURL + LoginPath
	b.scope = DefaultIssuer
}

func (b *fakeBot) set(f func(b *fakeBot)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

func (b *fakeBot) received() []*activity.Activity {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got)
}

func (b *fakeBot) refusals() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.refused)
}

func (b *fakeBot) authHeaders() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.auths)
}

func (b *fakeBot) replyStatuses() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.replies)
}

func (b *fakeBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	a, err := activity.Decode(body)
	if err != nil || a.Type == "" {
		http.Error(w, "no activity", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.auths = append(b.auths, r.Header.Get("Authorization"))
	status, delay, oversize := b.status, b.delay, b.oversize
	b.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		http.Error(w, "configured failure", status)
		return
	}
	if b.appID != "" {
		if err := b.checkToken(r.Header.Get("Authorization"), a); err != nil {
			b.mu.Lock()
			b.refused = append(b.refused, err.Error())
			b.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	b.mu.Lock()
	b.got = append(b.got, a)
	b.mu.Unlock()

	switch {
	case oversize:
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(bytes.Repeat([]byte(" "), maxResponseBytes+10))
	case a.Type == activity.TypeInvoke && a.Name == "signin/tokenExchange":
		status, body := tokenExchangeAnswer(a)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	case a.Type == activity.TypeInvoke:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprintf(w, `{"echo":%q}`, a.Name)
	case a.DeliveryMode == activity.DeliveryModeExpectReplies:
		// agents-hosting writes channelId as _channelId here (botframework.md §3).
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprintf(w, `{"activities":[{"type":"message","text":"first: %s","_channelId":%q,"id":"bot-set"},{"type":"message","text":"second","_channelId":%q}]}`,
			a.Text, a.ChannelID, a.ChannelID)
	case a.Type == activity.TypeMessage:
		status := b.reply(a, "echo: "+a.Text)
		b.mu.Lock()
		b.replies = append(b.replies, status)
		b.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// checkToken validates the bridge's token as botbuilder does.
func (b *fakeBot) checkToken(header string, a *activity.Activity) error {
	scheme, raw, ok := strings.Cut(header, " ")
	if !ok || scheme != "Bearer" || raw == "" {
		return errors.New("no bearer token")
	}
	keys, endorsements, err := b.fetchKeys()
	if err != nil {
		return err
	}
	var kid string
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, errors.New("unknown kid")
		}
		return k, nil
	},
		jwt.WithValidMethods([]string{"RS256", "RS384", "RS512"}),
		jwt.WithIssuer(b.issuer),
		jwt.WithAudience(b.appID),
		jwt.WithLeeway(300*time.Second),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if e := endorsements[kid]; len(e) > 0 && !slices.Contains(e, a.ChannelID) {
		return errors.New("could not validate endorsement")
	}
	if su, _ := claims["serviceurl"].(string); a.ServiceURL != "" && su != a.ServiceURL {
		return errors.New("serviceurl claim does not match")
	}
	if _, ver := claims["ver"]; ver {
		app, _ := claims["appid"].(string)
		if app == "" {
			app, _ = claims["azp"].(string)
		}
		if app != b.appID {
			return errors.New("skill validation: not a channel token")
		}
	}
	return nil
}

// fetchKeys reads the metadata and its JWKS, with each key's endorsements.
func (b *fakeBot) fetchKeys() (map[string]*rsa.PublicKey, map[string][]string, error) {
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := b.getJSON(b.metadataURL, &meta); err != nil {
		return nil, nil, err
	}
	var set struct {
		Keys []struct {
			Kid, N, E    string
			Endorsements []string
		}
	}
	if err := b.getJSON(meta.JWKSURI, &set); err != nil {
		return nil, nil, err
	}
	keys, endorsements := map[string]*rsa.PublicKey{}, map[string][]string{}
	for _, k := range set.Keys {
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil {
			return nil, nil, errors.New("bad jwk")
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		endorsements[k.Kid] = k.Endorsements
	}
	return keys, endorsements, nil
}

func (b *fakeBot) getJSON(u string, v any) error {
	resp, err := b.client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// token gets a Connector token from the bridge's dev token endpoint.
func (b *fakeBot) token() (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {b.appID}, "client_secret": {b.password}, "scope": {b.scope + "/.default"}}
	resp, err := b.client.PostForm(b.loginURL+TokenPath, form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint: %d %v", resp.StatusCode, err)
	}
	return tr.AccessToken, nil
}

// reply sends a ReplyToActivity the way botbuilder does: serviceUrl + "v3/conversations/" +
// encodeURIComponent(cid) + "/activities/" + encodeURIComponent(replyToId).
func (b *fakeBot) reply(to *activity.Activity, text string) int {
	out := &activity.Activity{
		Type: activity.TypeMessage, Text: text, ServiceURL: to.ServiceURL, ChannelID: to.ChannelID,
		From: to.Recipient, Recipient: to.From, Conversation: to.Conversation, ReplyToID: to.ID,
		InputHint: activity.InputHintAccepting, Locale: "en-US",
	}
	body, err := activity.Marshal(out)
	if err != nil {
		return -1
	}
	u := to.ServiceURL + "v3/conversations/" + encodeURIComponent(to.Conversation.ID) + "/activities/" + encodeURIComponent(to.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return -1
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if b.appID != "" {
		tok, err := b.token()
		if err != nil {
			b.t.Logf("fake bot: %v", err)
			return -1
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return -1
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// encodeURIComponent escapes like JavaScript's encodeURIComponent: everything but
// A–Z a–z 0–9 - _ . ! ~ * ' ( ).
func encodeURIComponent(s string) string {
	var sb strings.Builder
	for _, c := range []byte(s) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

// fakeExchangeToken is the one token the fake bot's token service exchanges.
const fakeExchangeToken = "sso-token-the-provider-issued"

// tokenExchangeAnswer answers signin/tokenExchange as OAuthPrompt does (signin.md §2c):
// {id, connectionName, token} with no token → 400; a token its token service does not exchange
// → 412 "unable to exchange token"; otherwise 200 with the id echoed. Body:
// TokenExchangeInvokeResponse {id, connectionName, failureDetail}.
func tokenExchangeAnswer(a *activity.Activity) (int, []byte) {
	var v struct {
		ID             string `json:"id"`
		ConnectionName string `json:"connectionName"`
		Token          string `json:"token"`
	}
	_ = json.Unmarshal(a.Value, &v)
	type answer struct {
		ID             string `json:"id"`
		ConnectionName string `json:"connectionName"`
		FailureDetail  string `json:"failureDetail,omitempty"`
	}
	status, ans := http.StatusOK, answer{ID: v.ID, ConnectionName: v.ConnectionName}
	switch {
	case v.Token == "":
		status, ans.FailureDetail = http.StatusBadRequest, "The bot received an InvokeActivity that is missing a TokenExchangeInvokeRequest value. This is required to be sent with the InvokeActivity."
	case v.Token != fakeExchangeToken:
		status, ans.FailureDetail = http.StatusPreconditionFailed, "The bot is unable to exchange token. Proceed with regular login."
	}
	body, _ := json.Marshal(ans)
	return status, body
}
