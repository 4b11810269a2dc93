package signin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/connector"
)

// Error codes, in the Connector's ErrorResponse shape (signin.md §1 "Models").
const (
	codeBadArgument = "BadArgument"
	codeNotFound    = "NotFound"
	codeServiceErr  = connector.CodeServiceError
)

// Limits on what bots send.
const (
	maxParam = 1024     // one query parameter (ids, names)
	maxBody  = 64 << 10 // an exchange or GetAadTokens body
)

// TokenResponse is the token service's TokenResponse (signin.md §1 "Models"). expiration is a
// string (RFC 3339), as the service writes it.
type TokenResponse struct {
	ChannelID      string `json:"channelId,omitempty"`
	ConnectionName string `json:"connectionName"`
	Token          string `json:"token"`
	Expiration     string `json:"expiration,omitempty"`
}

// SignInResource is GetSignInResource's answer.
type SignInResource struct {
	SignInLink            string                 `json:"signInLink"`
	TokenExchangeResource *TokenExchangeResource `json:"tokenExchangeResource,omitempty"`
}

// TokenExchangeResource tells a client which token to exchange (signin.md §2c).
type TokenExchangeResource struct {
	ID         string `json:"id"`
	URI        string `json:"uri"`
	ProviderID string `json:"providerId,omitempty"`
}

// TokenStatus is one element of GetTokenStatus's answer.
type TokenStatus struct {
	ChannelID                  string `json:"channelId,omitempty"`
	ConnectionName             string `json:"connectionName"`
	HasToken                   bool   `json:"hasToken"`
	ServiceProviderDisplayName string `json:"serviceProviderDisplayName"`
}

// apiError is an answer in the ErrorResponse shape.
func apiError(status int, code, msg string) error { return connector.New(status, code, msg) }

func badArgument(msg string) error { return apiError(http.StatusBadRequest, codeBadArgument, msg) }

// errNoToken is "no token": 404 with an EMPTY body, because botbuilder-js's CloudAdapter hands
// any parsed body to OAuthPrompt, which takes a truthy one for a token (signin.md §1 "Quirks").
var errNoToken = errors.New("no token")

// botHandler is a token service endpoint, called once the bot is authenticated as app.
type botHandler func(w http.ResponseWriter, r *http.Request, app string) error

// bot authenticates the bot as the Connector API does, then runs h and answers its error.
func (s *Service) bot(h botHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		app, err := s.cfg.Auth(r)
		if err == nil {
			err = h(w, r, app)
		}
		switch {
		case err == nil:
		case errors.Is(err, errNoToken):
			w.WriteHeader(http.StatusNotFound)
		default:
			var ce *connector.Error
			if !errors.As(err, &ce) && !connector.IsUnavailable(err) {
				s.log.Warn().Err(err).Str("path", r.URL.Path).Msg("token service call failed")
			}
			connector.WriteError(w, err, connector.BearerChallenge)
		}
	}
}

// query reads the named parameters; those in required must be present. Every value is
// bounded and UTF-8.
func query(r *http.Request, required []string, optional ...string) (map[string]string, error) {
	q := r.URL.Query()
	out := map[string]string{}
	for i, name := range append(append([]string(nil), required...), optional...) {
		v := q.Get(name)
		if i < len(required) && v == "" {
			return nil, badArgument(name + " is required")
		}
		if (len(v) > maxParam && name != "state") || !utf8.ValidString(v) { // state: DecodeState bounds it
			return nil, badArgument(name + " is too long or not UTF-8")
		}
		out[name] = v
	}
	return out, nil
}

// getSignInURL answers the link as raw text (signin.md §1: BFA reads bodyAsText).
func (s *Service) getSignInURL(w http.ResponseWriter, r *http.Request, app string) error {
	res, err := s.signInResource(r.Context(), r, app)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, res.SignInLink)
	return nil
}

func (s *Service) getSignInResource(w http.ResponseWriter, r *http.Request, app string) error {
	res, err := s.signInResource(r.Context(), r, app)
	if err != nil {
		return err
	}
	connector.WriteJSON(w, http.StatusOK, res)
	return nil
}

// signInResource decodes and binds the state, opens a sign-in session and returns its link
// (signin.md §6.2).
func (s *Service) signInResource(ctx context.Context, r *http.Request, app string) (*SignInResource, error) {
	q, err := query(r, []string{"state"}, "code_challenge", "finalRedirect")
	if err != nil {
		return nil, err
	}
	st, err := DecodeState(q["state"])
	if err != nil {
		return nil, badArgument(err.Error())
	}
	p, ok := s.connection(st.ConnectionName)
	if !ok {
		return nil, badArgument("no OAuth connection is named " + st.ConnectionName)
	}
	c, err := s.bind(ctx, st, app)
	if err != nil {
		return nil, err
	}
	return s.openSession(ctx, c, p, st, app)
}

// openSession stores a sign-in session for the state's user in conversation c and returns
// its sign-in resource.
func (s *Service) openSession(ctx context.Context, c *bridge.Conversation, p *provider, st State, app string) (*SignInResource, error) {
	sess := &session{
		Conv: c.ID, Connection: p.conn.Name, AppID: app, ChannelID: st.Conversation.ChannelID,
		UserID: st.Conversation.User.ID, BotID: st.Conversation.BotID(), BotConvID: st.Conversation.Conversation.ID,
		ServiceURL: st.Conversation.ServiceURL, RelatesTo: st.Conversation,
		Verifier: oauth2.GenerateVerifier(), Expires: s.cfg.Now().Add(s.cfg.SignInTTL),
	}
	id, rnd := signInID(c.ID)
	if err := s.vault.put(ctx, c.ID, keySession+rnd, sess); err != nil {
		return nil, err
	}
	link := s.cfg.PublicURL + SignInPath + "?signin=" + id
	// The latest link of the conversation for the connection, for the channel to fill an
	// OAuthCard's empty button with (signin.md §2a, §6.3), and the conversation where the
	// user last asked to sign in, for an SSO exchange to keep its token in.
	if err := s.vault.put(ctx, c.ID, keyLink+strings.ToLower(p.conn.Name), link); err != nil {
		return nil, err
	}
	if err := s.vault.put(ctx, c.ID, keyAsked+sess.owner(), asked{Saved: s.cfg.Now()}); err != nil {
		return nil, err
	}
	res := &SignInResource{SignInLink: link}
	if p.conn.TokenExchangeURL != "" {
		res.TokenExchangeResource = &TokenExchangeResource{ID: rnd, URI: p.conn.TokenExchangeURL, ProviderID: p.conn.Provider}
	}
	return res, nil
}

// errForeignState refuses a state that names a conversation, bot or user that is not the
// caller's: a state is bound to the conversation it names.
var errForeignState = apiError(http.StatusForbidden, "Forbidden", "the state does not name a conversation of this bot with this user")

// bind returns the conversation the state names, when the caller is its bot and the state's
// user its customer as the bot knows them.
func (s *Service) bind(ctx context.Context, st State, app string) (*bridge.Conversation, error) {
	if app != "" && st.MsAppID != "" && st.MsAppID != app {
		return nil, errForeignState
	}
	c, err := s.hub.ConversationByLeg(ctx, s.cfg.BotChannel, st.Conversation.Conversation.ID)
	switch {
	case errors.Is(err, bridge.ErrUnknownConversation):
		return nil, errForeignState
	case err != nil:
		return nil, err
	}
	if c.State == bridge.StateEnded || c.Bot.User.ID != st.Conversation.User.ID {
		return nil, errForeignState
	}
	if b := st.Conversation.BotID(); b != "" && c.Bot.Bot.ID != "" && b != c.Bot.Bot.ID {
		return nil, errForeignState
	}
	return c, nil
}

// getToken answers the stored token, or with code the token waiting for that magic code
// (signin.md §6.6); 404 with an empty body when there is none.
func (s *Service) getToken(w http.ResponseWriter, r *http.Request, app string) error {
	q, err := query(r, []string{"userId", "connectionName"}, "channelId", "code")
	if err != nil {
		return err
	}
	p, ok := s.connection(q["connectionName"])
	if !ok {
		return badArgument("no OAuth connection is named " + q["connectionName"])
	}
	tr, err := s.token(r.Context(), p, app, q["channelId"], q["userId"], q["code"])
	if err != nil {
		return err
	}
	connector.WriteJSON(w, http.StatusOK, tr)
	return nil
}

// token returns the user's token, releasing it with code when one is given.
func (s *Service) token(ctx context.Context, p *provider, app, channel, user, code string) (*TokenResponse, error) {
	owner := ownerKey(app, channel, user, p.conn.Name)
	if code != "" {
		if err := s.redeem(ctx, owner, code); err != nil {
			return nil, err
		}
	}
	tok, conv, err := s.vault.latestToken(ctx, owner)
	if errors.Is(err, bridge.ErrNotFound) {
		return nil, errNoToken
	}
	if err != nil {
		return nil, err
	}
	if tok, err = s.fresh(ctx, p, conv, owner, tok); err != nil {
		return nil, err
	}
	return s.response(p, channel, tok), nil
}

func (s *Service) response(p *provider, channel string, tok token) *TokenResponse {
	tr := &TokenResponse{ChannelID: channel, ConnectionName: p.conn.Name, Token: tok.Access}
	if !tok.Expiry.IsZero() {
		tr.Expiration = tok.Expiry.UTC().Format(time.RFC3339)
	}
	return tr
}

// fresh refreshes an expired token with its refresh token and stores the new one; an expired
// token without one is no token (the bot asks the user to sign in again).
func (s *Service) fresh(ctx context.Context, p *provider, conv, owner string, tok token) (token, error) {
	if tok.Expiry.IsZero() || s.cfg.Now().Add(time.Minute).Before(tok.Expiry) {
		return tok, nil
	}
	if tok.Refresh == "" {
		return token{}, errNoToken
	}
	nt, err := p.refresh(ctx, tok)
	if err != nil {
		s.log.Info().Str("conv_id", conv).Str("connection", p.conn.Name).Msg("token refresh refused; the user signs in again")
		_ = s.vault.remove(ctx, conv, keyToken+owner)
		return token{}, errNoToken
	}
	nt.Saved = s.cfg.Now()
	if err := s.vault.put(ctx, conv, keyToken+owner, nt); err != nil {
		return token{}, err
	}
	return nt, nil
}

// redeem moves the token waiting for code to the user's tokens. A code is single-use: it is
// removed whether or not it matches once its time is up, and when it matches.
func (s *Service) redeem(ctx context.Context, owner, code string) error {
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return errNoToken
	}
	var hit *pending
	var hitConv string
	now := s.cfg.Now()
	err := s.vault.all(ctx, keyCode+owner, func(conv string, plain []byte) error {
		var pe pending
		if json.Unmarshal(plain, &pe) != nil {
			return nil
		}
		if now.After(pe.Expires) {
			return s.vault.remove(ctx, conv, keyCode+owner)
		}
		if subtle.ConstantTimeCompare([]byte(pe.Code), []byte(code)) == 1 {
			hit, hitConv = &pe, conv
		}
		return nil
	})
	if err != nil {
		return err
	}
	if hit == nil {
		return errNoToken
	}
	if err := s.vault.remove(ctx, hitConv, keyCode+owner); err != nil {
		return err
	}
	hit.Token.Saved = now
	return s.vault.put(ctx, hitConv, keyToken+owner, hit.Token)
}

// signOut removes the user's tokens for the connection, or for every connection; 200 always
// (the Agents SDK throws on anything else, signin.md §1).
func (s *Service) signOut(w http.ResponseWriter, r *http.Request, app string) error {
	q, err := query(r, []string{"userId"}, "connectionName", "channelId")
	if err != nil {
		return err
	}
	for _, c := range s.cfg.Connections {
		if q["connectionName"] != "" && !strings.EqualFold(q["connectionName"], c.Name) {
			continue
		}
		if err := s.vault.removeTokens(r.Context(), ownerKey(app, q["channelId"], q["userId"], c.Name)); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// getTokenStatus lists the connections (those in include, a comma-separated list, when given)
// and whether the user has a token for each.
func (s *Service) getTokenStatus(w http.ResponseWriter, r *http.Request, app string) error {
	q, err := query(r, []string{"userId"}, "channelId", "include")
	if err != nil {
		return err
	}
	var include map[string]bool
	if q["include"] != "" {
		include = map[string]bool{}
		for _, n := range strings.Split(q["include"], ",") {
			include[strings.ToLower(strings.TrimSpace(n))] = true
		}
	}
	out := []TokenStatus{}
	for _, c := range s.cfg.Connections {
		if include != nil && !include[strings.ToLower(c.Name)] {
			continue
		}
		_, _, err := s.vault.latestToken(r.Context(), ownerKey(app, q["channelId"], q["userId"], c.Name))
		if err != nil && !errors.Is(err, bridge.ErrNotFound) {
			return err
		}
		out = append(out, TokenStatus{ChannelID: q["channelId"], ConnectionName: c.Name, HasToken: err == nil, ServiceProviderDisplayName: c.displayName()})
	}
	connector.WriteJSON(w, http.StatusOK, out)
	return nil
}

// tokenOrSignIn is GetTokenOrSignInResource's answer (the Agents SDK, signin.md §1).
type tokenOrSignIn struct {
	TokenResponse  *TokenResponse  `json:"tokenResponse,omitempty"`
	SignInResource *SignInResource `json:"signInResource,omitempty"`
}

// getTokenOrSignInResource answers the token when there is one (or code releases one), else a
// sign-in resource for the state.
func (s *Service) getTokenOrSignInResource(w http.ResponseWriter, r *http.Request, app string) error {
	q, err := query(r, []string{"userId", "connectionName", "state"}, "channelId", "code", "finalRedirect", "fwdUrl")
	if err != nil {
		return err
	}
	p, ok := s.connection(q["connectionName"])
	if !ok {
		return badArgument("no OAuth connection is named " + q["connectionName"])
	}
	tr, err := s.token(r.Context(), p, app, q["channelId"], q["userId"], q["code"])
	switch {
	case err == nil:
		connector.WriteJSON(w, http.StatusOK, tokenOrSignIn{TokenResponse: tr})
		return nil
	case !errors.Is(err, errNoToken):
		return err
	}
	res, err := s.signInResource(r.Context(), r, app)
	if err != nil {
		return err
	}
	connector.WriteJSON(w, http.StatusOK, tokenOrSignIn{SignInResource: res})
	return nil
}

// readBody reads a bounded UTF-8 JSON body into v.
func readBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return apiError(http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "the body is too large")
	}
	if !utf8.Valid(b) {
		return badArgument("the body is not UTF-8")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badArgument("the body is not the expected JSON")
	}
	return nil
}
