package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// provider is an OAuth connection's identity provider: its endpoints (from OpenID discovery
// for oidc), the authorization code grant with PKCE, refresh, and the checks of SSO tokens.
type provider struct {
	conn     Connection
	redirect string
	client   *http.Client

	// mu guards disc: the discovery document, fetched on first use and kept once it was had
	// (a cache of the provider's published configuration, not state of the bridge's).
	mu   sync.Mutex
	disc *discovered
}

// discovered is what a provider's configuration resolves to.
type discovered struct {
	oauth *oauth2.Config
	// idToken checks the id_token of a sign-in (aud = client id); sso checks a client's SSO
	// token (aud = token_exchange_url). Nil for oauth2 providers.
	idToken, sso *oidc.IDTokenVerifier
}

func newProvider(c Connection, redirect string, client *http.Client) *provider {
	return &provider{conn: c, redirect: redirect, client: client}
}

// clientCtx carries the provider's HTTP client to oauth2 and go-oidc.
func (p *provider) clientCtx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, p.client), p.client)
}

// resolve returns the provider's endpoints, discovering them on first use.
func (p *provider) resolve(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disc != nil {
		return p.disc, nil
	}
	cfg := &oauth2.Config{
		ClientID: p.conn.ClientID, ClientSecret: p.conn.clientSecret, RedirectURL: p.redirect,
		Endpoint: oauth2.Endpoint{AuthURL: p.conn.AuthorizeURL, TokenURL: p.conn.TokenURL},
		Scopes:   slices.Clone(p.conn.Scopes),
	}
	d := &discovered{oauth: cfg}
	if p.conn.Provider == "oidc" {
		// The key set go-oidc builds keeps the context it was made with for its later fetches:
		// a background one with the provider's client (whose timeout bounds each fetch).
		op, err := oidc.NewProvider(p.clientCtx(context.Background()), p.conn.Issuer)
		if err != nil {
			return nil, fmt.Errorf("connection %s: OpenID discovery: %w", p.conn.Name, err)
		}
		ep := op.Endpoint()
		if cfg.Endpoint.AuthURL == "" {
			cfg.Endpoint.AuthURL = ep.AuthURL
		}
		if cfg.Endpoint.TokenURL == "" {
			cfg.Endpoint.TokenURL = ep.TokenURL
		}
		if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
			cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
		}
		d.idToken = op.Verifier(&oidc.Config{ClientID: p.conn.ClientID})
		if p.conn.TokenExchangeURL != "" {
			d.sso = op.Verifier(&oidc.Config{ClientID: p.conn.TokenExchangeURL})
		}
	}
	if p.conn.clientSecret == "" {
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client sends its id in the form
	}
	p.disc = d
	return d, nil
}

// authURL is where the customer's browser goes to sign in: the authorization request with
// state and the PKCE S256 challenge of verifier (RFC 7636).
func (p *provider) authURL(ctx context.Context, state, verifier string) (string, error) {
	d, err := p.resolve(ctx)
	if err != nil {
		return "", err
	}
	return d.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil
}

// redeemCode exchanges the authorization code for the user's token, with the PKCE verifier;
// for oidc the id_token, when the provider returns one, must be valid for the bridge's client.
func (p *provider) redeemCode(ctx context.Context, code, verifier string) (token, error) {
	d, err := p.resolve(ctx)
	if err != nil {
		return token{}, err
	}
	t, err := d.oauth.Exchange(p.clientCtx(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return token{}, fmt.Errorf("connection %s: code exchange: %w", p.conn.Name, scrub(err))
	}
	if raw, ok := t.Extra("id_token").(string); ok && raw != "" && d.idToken != nil {
		if _, err := d.idToken.Verify(p.clientCtx(ctx), raw); err != nil {
			return token{}, fmt.Errorf("connection %s: id_token: %w", p.conn.Name, err)
		}
	}
	return fromOAuth(t), nil
}

// refresh gets a new token with tok's refresh token.
func (p *provider) refresh(ctx context.Context, tok token) (token, error) {
	d, err := p.resolve(ctx)
	if err != nil {
		return token{}, err
	}
	old := &oauth2.Token{AccessToken: tok.Access, RefreshToken: tok.Refresh, Expiry: time.Unix(1, 0)}
	t, err := d.oauth.TokenSource(p.clientCtx(ctx), old).Token()
	if err != nil {
		return token{}, fmt.Errorf("connection %s: refresh: %w", p.conn.Name, scrub(err))
	}
	nt := fromOAuth(t)
	if nt.Refresh == "" {
		nt.Refresh = tok.Refresh // the provider keeps the old one valid when it sends none
	}
	return nt, nil
}

func fromOAuth(t *oauth2.Token) token {
	return token{Access: t.AccessToken, Refresh: t.RefreshToken, Type: t.TokenType, Expiry: t.Expiry}
}

// scrub keeps an OAuth error's code and drops the response body oauth2 attaches, which may
// hold what the provider echoed back.
func scrub(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Errorf("%s (HTTP %d)", re.ErrorCode, re.Response.StatusCode)
	}
	return err
}

// checkSSO validates a client's SSO token: signature by the issuer's published keys, issuer,
// audience = token_exchange_url, expiry (signin.md §3 "SSO", §6.8).
func (p *provider) checkSSO(ctx context.Context, raw string) (*oidc.IDToken, error) {
	d, err := p.resolve(ctx)
	if err != nil {
		return nil, err
	}
	if d.sso == nil {
		return nil, errors.New("the connection has no token exchange URL")
	}
	return d.sso.Verify(p.clientCtx(ctx), raw)
}

// onBehalfOf exchanges the user's assertion for a token for scopes with Microsoft Entra ID's
// on-behalf-of grant (signin.md §3 last bullet; learn.microsoft.com/entra/identity-platform/
// v2-oauth2-on-behalf-of-flow): POST token endpoint, form grant_type=urn:ietf:params:oauth:
// grant-type:jwt-bearer, client_id, client_secret, assertion, scope, requested_token_use=
// on_behalf_of; the answer is an OAuth 2.0 token response.
func (p *provider) onBehalfOf(ctx context.Context, assertion string, scopes []string) (token, error) {
	d, err := p.resolve(ctx)
	if err != nil {
		return token{}, err
	}
	form := url.Values{
		"grant_type":          {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"client_id":           {p.conn.ClientID},
		"client_secret":       {p.conn.clientSecret},
		"assertion":           {assertion},
		"scope":               {strings.Join(scopes, " ")},
		"requested_token_use": {"on_behalf_of"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.oauth.Endpoint.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return token{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return token{}, fmt.Errorf("connection %s: on-behalf-of: %w", p.conn.Name, err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&body); err != nil {
		return token{}, fmt.Errorf("connection %s: on-behalf-of: HTTP %d, unreadable answer", p.conn.Name, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return token{}, fmt.Errorf("connection %s: on-behalf-of refused: %s (HTTP %d)", p.conn.Name, body.Error, resp.StatusCode)
	}
	t := token{Access: body.AccessToken, Refresh: body.RefreshToken, Type: body.TokenType}
	if body.ExpiresIn > 0 {
		t.Expiry = time.Now().Add(time.Duration(body.ExpiresIn) * time.Second)
	}
	return t, nil
}
