package signin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/directline"
)

// The browser's side of a sign-in (signin.md §6.4–6.6): the bridge's link sends the customer to
// the identity provider with PKCE; the provider sends them back to RedirectPath with the code;
// the bridge redeems it, then either sends the bot the tokens/response event itself (the browser
// proved it is the customer's, §2b) or shows a magic code for the customer to type (§2a).

// SessionCookie is the cookie Direct Line's getsessionid sets and a channel-completed sign-in
// checks (signin.md §2b: real Direct Line sets webchat_session_v2).
const SessionCookie = directline.SessionCookie

// SessionValue is the conversation value under which the Direct Line server keeps the session
// id its getsessionid handed out for the conversation (channels/directline writes it).
const SessionValue = directline.SessionValue

// TokensResponse is the name of the event that hands the bot a token (signin.md §2c).
const TokensResponse = bridge.TokensResponseEvent

// sealedPrefix marks a token sealed in the conversation log: the log is at rest too, and the
// bot channel opens it on the way to the bot (Service.ToBot).
const sealedPrefix = "bfbridge-sealed:"

// Page texts, in the user's words.
const (
	textDone    = "You are now signed in and can close this window." // §2b, as Azure's page says
	textCode    = "To finish signing in, type this code in the chat:"
	textExpired = "This sign-in link has expired or was already used. Ask the bot to sign you in again."
	textFailed  = "Sign-in did not complete. Ask the bot to sign you in again."
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Sign in</title><style>body{font-family:system-ui,sans-serif;margin:3em auto;max-width:32em;text-align:center}
.code{font-size:2.5em;letter-spacing:.2em;font-family:monospace;margin:.5em}</style></head>
<body><p>{{.Text}}</p>{{if .Code}}<div class="code" id="code">{{.Code}}</div>{{end}}</body></html>
`))

// writePage answers an HTML page; nothing on it may be cached or leak through a referrer.
func writePage(w http.ResponseWriter, status int, text, code string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = page.Execute(w, struct{ Text, Code string }{text, code})
}

// maxChallenge bounds the code_challenge Web Chat appends (a Direct Line session id); maxCode
// the authorization code a provider sends back (RFC 6749 leaves its size to the provider).
const (
	maxChallenge = 128
	maxCode      = 4096
)

// serveSignIn sends the customer to the identity provider. A code_challenge on the link is Web
// Chat's Direct Line session id (§2b): remembered, to be checked against the cookie on return.
func (s *Service) serveSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, ch := signInParams(r.URL.Query())
	sess, rnd, err := s.session(ctx, id)
	if err != nil {
		writePage(w, http.StatusBadRequest, textExpired, "")
		return
	}
	if ch != "" && len(ch) <= maxChallenge && utf8.ValidString(ch) {
		sess.Challenge = ch
		if err := s.vault.put(ctx, sess.Conv, keySession+rnd, sess); err != nil {
			s.fail(w, sess, err)
			return
		}
	}
	p, ok := s.connection(sess.Connection)
	if !ok {
		writePage(w, http.StatusBadRequest, textExpired, "")
		return
	}
	u, err := p.authURL(ctx, id, sess.Verifier)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u, http.StatusFound)
}

// signInParams reads the link's signin id and code_challenge. Web Chat appends
// encodeURIComponent("&code_challenge=" + sessionId) to the button's value (signin.md §2b), so
// the challenge arrives inside the signin parameter; a client that appends it unescaped sends
// it as a parameter of its own.
func signInParams(q url.Values) (id, challenge string) {
	id, challenge = q.Get("signin"), q.Get("code_challenge")
	if before, after, ok := strings.Cut(id, "&code_challenge="); ok {
		id = before
		if challenge == "" {
			challenge = after
		}
	}
	return id, challenge
}

// session reads the unexpired sign-in session id names.
func (s *Service) session(ctx context.Context, id string) (*session, string, error) {
	conv, rnd, err := parseSignInID(id)
	if err != nil {
		return nil, "", err
	}
	var sess session
	if err := s.vault.get(ctx, conv, keySession+rnd, &sess); err != nil {
		return nil, "", err
	}
	if sess.Conv != conv || s.cfg.Now().After(sess.Expires) {
		return nil, "", errBadSignIn
	}
	return &sess, rnd, nil
}

func (s *Service) fail(w http.ResponseWriter, sess *session, err error) {
	s.log.Warn().Err(err).Str("conv_id", sess.Conv).Str("connection", sess.Connection).Msg("sign-in failed")
	writePage(w, http.StatusBadGateway, textFailed, "")
}

// serveRedirect is the identity provider's redirect back (§6.4): the session is used up, the
// code redeemed, and the sign-in completed one way or the other.
func (s *Service) serveRedirect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	sess, rnd, err := s.session(ctx, q.Get("state"))
	if err != nil {
		writePage(w, http.StatusBadRequest, textExpired, "")
		return
	}
	// Single use: a replayed redirect finds nothing.
	if err := s.vault.remove(ctx, sess.Conv, keySession+rnd); err != nil {
		s.fail(w, sess, err)
		return
	}
	if e := q.Get("error"); e != "" || q.Get("code") == "" || len(q.Get("code")) > maxCode {
		s.log.Info().Str("conv_id", sess.Conv).Str("oauth_error", clip(e, 64)).Msg("sign-in refused by the identity provider")
		writePage(w, http.StatusBadRequest, textFailed, "")
		return
	}
	p, ok := s.connection(sess.Connection)
	if !ok {
		writePage(w, http.StatusBadRequest, textExpired, "")
		return
	}
	tok, err := p.redeemCode(ctx, q.Get("code"), sess.Verifier)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	done, err := s.completeByChannel(ctx, r, sess, rnd, tok)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	if done {
		writePage(w, http.StatusOK, textDone, "")
		return
	}
	code, err := s.magicCode(ctx, sess, tok)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	writePage(w, http.StatusOK, textCode, code)
}

// magicCode keeps tok until the customer types the code it returns (§2a, §6.6): 6 random
// digits, valid for CodeTTL, once.
func (s *Service) magicCode(ctx context.Context, sess *session, tok token) (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	pe := pending{Code: code, Expires: s.cfg.Now().Add(s.cfg.CodeTTL), Token: tok}
	if err := s.vault.put(ctx, sess.Conv, keyCode+sess.owner(), pe); err != nil {
		return "", err
	}
	s.log.Info().Str("conv_id", sess.Conv).Str("connection", sess.Connection).Msg("signed in; waiting for the magic code")
	return code, nil
}

// sameBrowser reports whether the browser on the redirect is the customer's: the link carried
// Web Chat's code_challenge, the request carries the Direct Line session cookie with that
// value, and it is the session id the conversation's Direct Line client was given (§2b, §6.5).
func (s *Service) sameBrowser(ctx context.Context, r *http.Request, sess *session) bool {
	if sess.Challenge == "" {
		return false
	}
	ck, err := r.Cookie(SessionCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(sess.Challenge)) != 1 {
		return false
	}
	want, err := s.hub.Value(ctx, sess.Conv, SessionValue)
	return err == nil && subtle.ConstantTimeCompare(want, []byte(sess.Challenge)) == 1
}

// completeByChannel stores the token and appends the tokens/response event for the bot, when
// the browser is the customer's and the bot has the conversation (an agent must never get the
// event). It reports false when the customer is to type a code instead.
func (s *Service) completeByChannel(ctx context.Context, r *http.Request, sess *session, rnd string, tok token) (bool, error) {
	if !s.sameBrowser(ctx, r, sess) {
		return false, nil
	}
	c, err := s.hub.Conversation(ctx, sess.Conv)
	if err != nil || c.State != bridge.StateBot {
		return false, nil
	}
	tok.Saved = s.cfg.Now()
	if err := s.vault.put(ctx, sess.Conv, keyToken+sess.owner(), tok); err != nil {
		return false, err
	}
	a, err := s.tokensResponse(sess, tok)
	if err != nil {
		return false, err
	}
	var de *bridge.DeliveryError
	if _, err := s.hub.Receive(ctx, c.Customer, a, "signin:"+rnd); err != nil && !errors.As(err, &de) {
		return false, err // a failed delivery is retried from the log; the token is stored anyway
	}
	s.log.Info().Str("conv_id", sess.Conv).Str("connection", sess.Connection).Msg("signed in; the bot was sent the token")
	return true, nil
}

// tokensResponseValue is the event's value: a TokenResponse (§2b; §6.5).
type tokensResponseValue struct {
	ChannelID      string `json:"channelId,omitempty"`
	ConnectionName string `json:"connectionName"`
	Token          string `json:"token"`
	Expiration     string `json:"expiration,omitempty"`
}

// tokensResponse builds the event as the token service sends it (§2b): from the user to the
// bot in the same conversation, relatesTo the state's reference. The token is sealed: the
// event is kept in the conversation log; the bot channel opens it on delivery (ToBot).
func (s *Service) tokensResponse(sess *session, tok token) (*activity.Activity, error) {
	v := tokensResponseValue{ChannelID: sess.ChannelID, ConnectionName: sess.Connection, Token: s.sealForLog(sess.BotConvID, tok.Access)}
	if !tok.Expiry.IsZero() {
		v.Expiration = tok.Expiry.UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	val, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	ref := sess.RelatesTo
	return &activity.Activity{
		Type: activity.TypeEvent, Name: TokensResponse, ChannelID: sess.ChannelID,
		From:      &activity.ChannelAccount{ID: sess.UserID},
		Recipient: &activity.ChannelAccount{ID: sess.BotID},
		ReplyToID: ref.ActivityID,
		RelatesTo: &activity.ConversationReference{
			ActivityID: ref.ActivityID, ChannelID: ref.ChannelID, ServiceURL: ref.ServiceURL,
			User:         &activity.ChannelAccount{ID: ref.User.ID},
			Bot:          &activity.ChannelAccount{ID: ref.BotID()},
			Conversation: &activity.ConversationAccount{ID: ref.Conversation.ID},
		},
		Value: val,
	}, nil
}

// sealForLog seals a token for the log, bound to the bot's conversation id.
func (s *Service) sealForLog(botConvID, tok string) string {
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(s.vault.seal.Seal([]byte(tok), TokensResponse+"\x00"+botConvID))
}

// ToBot opens the sealed token of a tokens/response event on its way to the bot (the bot
// channel calls it on the copy it sends). Another event passes unchanged.
func (s *Service) ToBot(_ context.Context, botConvID string, a *activity.Activity) error {
	if a.Type != activity.TypeEvent || a.Name != TokensResponse || len(a.Value) == 0 {
		return nil
	}
	var v map[string]any
	if json.Unmarshal(a.Value, &v) != nil {
		return nil
	}
	t, _ := v["token"].(string)
	if !strings.HasPrefix(t, sealedPrefix) {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(t[len(sealedPrefix):])
	if err != nil {
		return errSealed
	}
	plain, err := s.vault.seal.Open(raw, TokensResponse+"\x00"+botConvID)
	if err != nil {
		return err
	}
	v["token"] = string(plain)
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	a.Value = b
	return nil
}

func clip(s string, n int) string {
	if len(s) > n || !utf8.ValidString(s) {
		return "(unreadable)"
	}
	return s
}
