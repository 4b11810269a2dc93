package omnichannel

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/internal/retry"
	"github.com/bfbridge/bfbridge/internal/tokencache"
)

// Outbound tokens (botframework.md §4.2): the bridge, as the bot, gets a client-credentials
// token from Entra ID — a form POST of grant_type=client_credentials, client_id, and either
// client_secret or a certificate's signed client assertion (RFC 7523), with
// scope=https://api.botframework.com/.default — and sends it as a Bearer token on every call
// to Omnichannel's serviceUrl. Tokens are cached and renewed 5 minutes before they expire, as
// botbuilder's AppCredentials do (half-way through the life of a token shorter than 10 minutes).

const (
	// assertionTTL is the life of a client assertion.
	assertionTTL = 10 * time.Minute
	// maxTokenBody bounds a token response.
	maxTokenBody = 64 << 10
)

// tokenSource gets and caches the bridge's outbound token. Concurrent callers share one fetch.
type tokenSource struct {
	cfg    Config
	client *http.Client
	log    zerolog.Logger
	key    *rsa.PrivateKey // certificate credential, or nil
	x5t    string
	cache  *tokencache.Cache
}

func newTokenSource(cfg Config, client *http.Client, log zerolog.Logger) *tokenSource {
	s := &tokenSource{cfg: cfg, client: client, log: log}
	s.cache = tokencache.New(s.fetchLogged)
	if cfg.usesCertificate() {
		s.key = cfg.keyOf()
		tp, _ := thumbprintBytes(cfg.CertificateThumbprint)
		s.x5t = base64.RawURLEncoding.EncodeToString(tp)
	}
	return s
}

// oauthResponse is the token endpoint's answer: a token, or an OAuth 2.0 error (RFC 6749 §5.2).
type oauthResponse struct {
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	AccessToken string `json:"access_token"`
	Error       string `json:"error"`
}

// token returns a valid token, fetching one when the cached one is missing or due for renewal.
func (s *tokenSource) token(ctx context.Context) (string, error) { return s.cache.Token(ctx) }

// invalidate drops the cached token tok (Omnichannel refused it), unless it was replaced already.
func (s *tokenSource) invalidate(tok string) { s.cache.Invalidate(tok) }

// fetchLogged is fetch, noting each token obtained.
func (s *tokenSource) fetchLogged(ctx context.Context) (string, time.Duration, error) {
	tok, life, err := s.fetch(ctx)
	if err == nil {
		s.log.Debug().Dur("expires_in", life).Msg("omnichannel token obtained")
	}
	return tok, life, err
}

// fetch asks the token endpoint for a token. Errors are *SendError.
func (s *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{
		"grant_type": {"client_credentials"},
		"client_id":  {s.cfg.AppID},
		"scope":      {s.cfg.Scope},
	}
	if s.key != nil {
		assertion, err := s.assertion()
		if err != nil {
			return "", 0, &SendError{Op: "token", Err: err}
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	} else {
		form.Set("client_secret", s.cfg.AppPassword)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, &SendError{Op: "token", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// A token request changes nothing: it may always be sent again.
		return "", 0, &SendError{Op: "token", Retryable: true, Err: scrubURLError(err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return "", 0, &SendError{Op: "token", Status: resp.StatusCode, Retryable: true, Err: err}
	}
	var r oauthResponse
	_ = json.Unmarshal(b, &r)
	if resp.StatusCode != http.StatusOK || r.AccessToken == "" {
		st := resp.StatusCode
		return "", 0, &SendError{
			Op: "token", Status: st, Code: r.Error, RetryAfter: retry.After(resp.Header, time.Now()),
			Retryable: st >= 500 || st == http.StatusTooManyRequests || st == http.StatusRequestTimeout,
			Err:       errors.New("the token endpoint refused the request"),
		}
	}
	life := time.Duration(r.ExpiresIn) * time.Second
	if life <= 0 {
		life = time.Hour
	}
	return r.AccessToken, life, nil
}

// assertion signs the client assertion of a certificate credential, as MSAL writes it: RS256,
// header x5t = the certificate's SHA-1 thumbprint, aud = the token endpoint, iss = sub = the
// app id, a random jti and a 10-minute life.
func (s *tokenSource) assertion() (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": s.cfg.TokenURL,
		"iss": s.cfg.AppID,
		"sub": s.cfg.AppID,
		"jti": base64.RawURLEncoding.EncodeToString(jti),
		"nbf": now.Unix(),
		"iat": now.Unix(),
		"exp": now.Add(assertionTTL).Unix(),
	})
	t.Header["x5t"] = s.x5t
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return signed, nil
}

// scrubURLError drops the URL from an *url.Error, which may carry a query or a path with
// identifiers, and keeps the cause.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}
