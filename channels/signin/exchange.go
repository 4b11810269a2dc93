package signin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/connector"
)

// exchangeRequest is the body of POST /api/usertoken/exchange: the client's SSO token, or (a
// root bot for its skill) the uri of a resource to exchange the user's stored token for
// (signin.md §1, §2c "Skills").
type exchangeRequest struct {
	URI   string `json:"uri"`
	Token string `json:"token"`
}

// errExchange is the answer to a token that cannot be exchanged: 400 without a token, so that
// OAuthPrompt answers the client's invoke with 412 and the client shows the card (§2c, §6.8).
var errExchange = apiError(http.StatusBadRequest, codeBadArgument, "the token cannot be exchanged")

// exchange validates the client's token and exchanges it (Entra ID: on behalf of the user),
// keeps the result as the user's token and answers it as a TokenResponse.
func (s *Service) exchange(w http.ResponseWriter, r *http.Request, app string) error {
	q, err := query(r, []string{"userId", "connectionName", "channelId"})
	if err != nil {
		return err
	}
	var req exchangeRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	p, ok := s.connection(q["connectionName"])
	if !ok {
		return badArgument("no OAuth connection is named " + q["connectionName"])
	}
	ctx := r.Context()
	owner := ownerKey(app, q["channelId"], q["userId"], p.conn.Name)
	var tok token
	switch {
	case req.Token != "":
		tok, err = s.exchangeToken(ctx, p, req.Token)
	case req.URI != "":
		tok, err = s.exchangeURI(ctx, p, owner, req.URI)
	default:
		return badArgument("the body needs a token or a uri")
	}
	if err != nil {
		return err
	}
	conv, err := s.askedIn(ctx, owner)
	if err != nil {
		return err
	}
	tok.Saved = s.cfg.Now()
	if err := s.vault.put(ctx, conv, keyToken+owner, tok); err != nil {
		return err
	}
	connector.WriteJSON(w, http.StatusOK, s.response(p, q["channelId"], tok))
	return nil
}

// exchangeToken checks the client's SSO token and, for on-behalf-of connections, exchanges it
// for the connection's scopes.
func (s *Service) exchangeToken(ctx context.Context, p *provider, raw string) (token, error) {
	idt, err := p.checkSSO(ctx, raw)
	if err != nil {
		s.log.Info().Str("connection", p.conn.Name).Str("reason", err.Error()).Msg("SSO token refused")
		return token{}, errExchange
	}
	if !p.conn.obo() {
		return token{Access: raw, Type: "Bearer", Expiry: idt.Expiry}, nil
	}
	t, err := p.onBehalfOf(ctx, raw, p.conn.Scopes)
	if err != nil {
		s.log.Info().Str("connection", p.conn.Name).Str("reason", err.Error()).Msg("on-behalf-of exchange refused")
		return token{}, errExchange
	}
	return t, nil
}

// exchangeURI exchanges the user's stored token for the resource uri (a skill's): on behalf of
// the user for on-behalf-of connections; 404 when there is no stored token or the connection
// cannot exchange.
func (s *Service) exchangeURI(ctx context.Context, p *provider, owner, uri string) (token, error) {
	if !p.conn.obo() {
		return token{}, errNoToken
	}
	tok, conv, err := s.vault.latestToken(ctx, owner)
	if errors.Is(err, bridge.ErrNotFound) {
		return token{}, errNoToken
	}
	if err != nil {
		return token{}, err
	}
	if tok, err = s.fresh(ctx, p, conv, owner, tok); err != nil {
		return token{}, err
	}
	t, err := p.onBehalfOf(ctx, tok.Access, []string{resourceScope(uri)})
	if err != nil {
		s.log.Info().Str("connection", p.conn.Name).Str("reason", err.Error()).Msg("on-behalf-of exchange refused")
		return token{}, errExchange
	}
	return t, nil
}

// resourceScope is the Entra ID v2 scope for a resource: its /.default, unless it names a
// scope already.
func resourceScope(uri string) string {
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if strings.Contains(rest, "/") {
		return uri // api://app-id/scope: a scope already
	}
	return strings.TrimRight(uri, "/") + "/.default"
}

// askedIn returns the conversation where the user last asked to sign in with the connection:
// an exchange names no conversation, and a token is kept with one (so that it is erased with
// it). None: 404, the bot was never told to sign this user in.
func (s *Service) askedIn(ctx context.Context, owner string) (string, error) {
	var conv string
	var latest asked
	err := s.vault.all(ctx, keyAsked+owner, func(c string, plain []byte) error {
		var a asked
		if json.Unmarshal(plain, &a) == nil && (conv == "" || a.Saved.After(latest.Saved)) {
			conv, latest = c, a
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if conv == "" {
		return "", apiError(http.StatusNotFound, codeNotFound, "no sign-in was asked of this user in any conversation")
	}
	return conv, nil
}

// aadRequest is the body of GetAadTokens.
type aadRequest struct {
	ResourceURLs []string `json:"resourceUrls"`
}

// maxResources bounds the resources of one GetAadTokens call.
const maxResources = 16

// getAadTokens answers a token for each resource URL, exchanged on behalf of the user from the
// stored token: it applies to Entra ID (on-behalf-of) connections only; others get 400.
func (s *Service) getAadTokens(w http.ResponseWriter, r *http.Request, app string) error {
	q, err := query(r, []string{"userId", "connectionName"}, "channelId")
	if err != nil {
		return err
	}
	var req aadRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	p, ok := s.connection(q["connectionName"])
	switch {
	case !ok:
		return badArgument("no OAuth connection is named " + q["connectionName"])
	case !p.conn.obo():
		return badArgument("GetAadTokens applies to Entra ID (on-behalf-of) connections only")
	case len(req.ResourceURLs) == 0 || len(req.ResourceURLs) > maxResources:
		return badArgument("resourceUrls must list 1 to 16 URLs")
	}
	owner := ownerKey(app, q["channelId"], q["userId"], p.conn.Name)
	out := map[string]*TokenResponse{}
	for _, u := range req.ResourceURLs {
		t, err := s.exchangeURI(r.Context(), p, owner, u)
		if err != nil {
			return err
		}
		out[u] = s.response(p, q["channelId"], t)
	}
	connector.WriteJSON(w, http.StatusOK, out)
	return nil
}
