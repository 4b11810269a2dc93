package botframework

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bfbridge/bfbridge/internal/botauth"
	"github.com/golang-jwt/jwt/v5"
)

// Token lifetimes and limits.
const (
	// channelTokenTTL is the life of a channel→bot token; it is reused until a minute before it ends.
	channelTokenTTL = 5 * time.Minute
	// devTokenTTL is the life of a dev token, as Entra ID's (expires_in 3599).
	devTokenTTL = time.Hour
	// clockLeeway is the clock skew allowed on the bot's tokens, as botbuilder allows (300 s).
	clockLeeway = 5 * time.Minute
	// maxTokenForm bounds a token request body.
	maxTokenForm = 64 << 10
	// metadataTimeout bounds one fetch of external OpenID metadata.
	metadataTimeout = 10 * time.Second
	// metadataRetry is how long a failed metadata fetch is remembered before it is tried again.
	metadataRetry = 10 * time.Second
)

// validMethods are the algorithms accepted on the bot's tokens (botbuilder accepts the same).
var validMethods = []string{"RS256", "RS384", "RS512"}

// channelToken is a channel→bot token before it is signed. Tests change it through
// Channel.tokenHook to forge, expire or misaddress tokens.
type channelToken struct {
	Claims jwt.MapClaims
	Key    *rsa.PrivateKey
	Kid    string
	// Omit sends the activity without an Authorization header.
	Omit bool
}

// cachedToken is a signed channel→bot token and when to stop reusing it.
type cachedToken struct {
	serviceURL string
	raw        string
	renewAt    time.Time
}

// channelAuthorization returns the Authorization header value for a POST to the bot whose
// activity has serviceURL, or "" in anonymous mode. Claims: iss, aud = bot app id, serviceurl,
// nbf, exp, and nothing that makes botbuilder or agents-hosting read it as a skill or Entra
// token (no ver, appid, azp, tid: botframework.md §4.1).
func (c *Channel) channelAuthorization(serviceURL string) (string, error) {
	if c.anonymous() {
		return "", nil
	}
	hook := c.tokenHook.Load()
	now := time.Now()
	if hook == nil {
		c.tokMu.Lock()
		t := c.tok
		c.tokMu.Unlock()
		if t != nil && t.serviceURL == serviceURL && now.Before(t.renewAt) {
			return "Bearer " + t.raw, nil
		}
	}
	tok := &channelToken{
		Claims: jwt.MapClaims{
			"iss":        c.cfg.Issuer,
			"aud":        c.cfg.BotAppID,
			"serviceurl": serviceURL,
			"nbf":        now.Unix(),
			"exp":        now.Add(channelTokenTTL).Unix(),
		},
		Key: c.key.priv,
		Kid: c.key.kid,
	}
	if hook != nil {
		(*hook)(tok)
		if tok.Omit {
			return "", nil
		}
	}
	raw, err := sign(tok.Claims, tok.Key, tok.Kid)
	if err != nil {
		return "", err
	}
	if hook == nil {
		c.tokMu.Lock()
		c.tok = &cachedToken{serviceURL: serviceURL, raw: raw, renewAt: now.Add(channelTokenTTL - time.Minute)}
		c.tokMu.Unlock()
	}
	return "Bearer " + raw, nil
}

// sign makes an RS256 JWT with the kid header.
func sign(claims jwt.MapClaims, key *rsa.PrivateKey, kid string) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// tokenResponse is the OAuth 2.0 token response, as Entra ID gives it.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

// oauthError is the OAuth 2.0 error response (RFC 6749 §5.2).
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

// serveToken is the dev token endpoint: the client-credentials grant of Entra ID's
// /botframework.com/oauth2/v2.0/token (botframework.md §4.2), so that a local bot can call the
// Connector API with a token the bridge can check. The token has iss = Config.Issuer,
// aud = the requested scope without "/.default", and appid = azp = the client id.
func (c *Channel) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	fail := func(status int, code, desc string) {
		c.log.Debug().Str("peer", r.RemoteAddr).Str("oauth_error", code).Msg("token request refused")
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="bfbridge"`)
		}
		writeJSON(w, status, oauthError{Code: code, Description: desc})
	}
	req, err := parseTokenRequest(w, r)
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			fail(http.StatusBadRequest, oe.Code, oe.Description)
			return
		}
		fail(http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	if !c.clientOK(req.clientID, req.clientSecret) {
		fail(http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	// A token the Connector API would refuse is not issued: the bot learns at once which scope
	// to ask for, rather than from a 401 on its first reply.
	if ok := c.cfg.audiences(); !slices.Contains(ok, req.audience) {
		fail(http.StatusBadRequest, "invalid_scope", "this bridge issues tokens for its Connector API only: ask for "+strings.Join(ok, "/.default or ")+"/.default")
		return
	}
	now := time.Now()
	raw, err := sign(jwt.MapClaims{
		"iss":   c.cfg.Issuer,
		"aud":   req.audience,
		"appid": req.clientID,
		"azp":   req.clientID,
		"sub":   req.clientID,
		"ver":   "1.0",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(devTokenTTL).Unix(),
	}, c.key.priv, c.key.kid)
	if err != nil {
		c.log.Error().Err(err).Msg("sign dev token")
		fail(http.StatusInternalServerError, "server_error", "cannot sign a token")
		return
	}
	secs := int(devTokenTTL / time.Second)
	c.log.Debug().Str("peer", r.RemoteAddr).Msg("dev token issued")
	writeJSON(w, http.StatusOK, tokenResponse{TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: raw})
}

// tokenRequest is a parsed client-credentials request.
type tokenRequest struct {
	clientID, clientSecret, audience string
}

// parseTokenRequest reads a client-credentials token request: the form in the body (never the
// query), client credentials in the form or in HTTP Basic auth. Errors are *oauthError.
func parseTokenRequest(w http.ResponseWriter, r *http.Request) (tokenRequest, error) {
	if w != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
	}
	if err := r.ParseForm(); err != nil {
		return tokenRequest{}, &oauthError{Code: "invalid_request", Description: "the body is not a form"}
	}
	f := r.PostForm
	if gt := f.Get("grant_type"); gt != "client_credentials" {
		return tokenRequest{}, &oauthError{Code: "unsupported_grant_type", Description: "only client_credentials is supported"}
	}
	req := tokenRequest{clientID: f.Get("client_id"), clientSecret: f.Get("client_secret")}
	if id, secret, ok := r.BasicAuth(); ok && req.clientID == "" {
		req.clientID, req.clientSecret = id, secret
	}
	if req.clientID == "" {
		return tokenRequest{}, &oauthError{Code: "invalid_request", Description: "client_id is required"}
	}
	scope := strings.TrimSpace(f.Get("scope"))
	if scope == "" || strings.ContainsAny(scope, " \t") {
		return tokenRequest{}, &oauthError{Code: "invalid_scope", Description: "one scope ending in /.default is required"}
	}
	req.audience = strings.TrimSuffix(scope, "/.default")
	if req.audience == "" {
		return tokenRequest{}, &oauthError{Code: "invalid_scope", Description: "the scope names no resource"}
	}
	return req, nil
}

// clientOK checks client credentials in constant time. With no bot app id or password
// configured nothing passes.
func (c *Channel) clientOK(id, secret string) bool {
	if c.cfg.BotAppID == "" || c.cfg.BotAppPassword == "" {
		return false
	}
	idOK := equalSecret(id, c.cfg.BotAppID)
	secretOK := equalSecret(secret, c.cfg.BotAppPassword)
	return idOK && secretOK
}

// equalSecret compares two strings in time independent of their contents and lengths.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// verifier checks the bot's tokens on Connector API calls. It is made on first use, when the
// bridge may be listening (its own metadata) and the identity provider reachable.
type verifier struct {
	once sync.Once
	v    *botauth.Verifier
}

// errNoKeys is returned while the external key metadata cannot be had.
var errNoKeys = errors.New("the token validation keys are unavailable")

// authenticate checks the bot's Authorization header on a Connector API call. In anonymous mode
// every call passes, with or without a token (as botbuilder does). It returns an *apiError.
func (c *Channel) authenticate(r *http.Request) error {
	if c.anonymous() {
		return nil
	}
	refuse := func(reason string) error {
		c.log.Debug().Str("peer", r.RemoteAddr).Str("reason", reason).Msg("connector call refused")
		return newAPIError(http.StatusUnauthorized, CodeUnauthorized, "unauthorized: "+reason)
	}
	tok, err := c.tokenVerifier().Verify(r.Context(), r.Header.Get("Authorization"))
	var re *botauth.RefusedError
	switch {
	case errors.As(err, &re):
		return refuse(re.Reason)
	case err != nil:
		return newAPIError(http.StatusServiceUnavailable, CodeServiceError, errNoKeys.Error())
	}
	if app := appIDOf(tok.Claims); app != c.cfg.BotAppID {
		return refuse("the token was not issued to the bot")
	}
	return nil
}

// appIDOf returns the app the token was issued to: appid (v1 tokens) or azp (v2 tokens).
func appIDOf(claims jwt.MapClaims) string {
	if s, ok := claims["appid"].(string); ok && s != "" {
		return s
	}
	s, _ := claims["azp"].(string)
	return s
}

// tokenVerifier returns the verifier of the bot's tokens: against the bridge's own key, served
// from memory, or against external metadata, whose jwks_uri keyfunc then watches.
func (c *Channel) tokenVerifier() *botauth.Verifier {
	c.verify.once.Do(func() {
		opts := botauth.Options{
			Issuers:      c.cfg.TokenIssuers,
			Audience:     c.cfg.OAuthScope,
			AltAudiences: c.cfg.audiences()[1:],
			Methods:      validMethods,
			Leeway:       clockLeeway,
			Client:       c.metaClient,
			Timeout:      metadataTimeout,
			FailureMemo:  metadataRetry,
			Name:         "bot token keys",
			Log:          c.log,
		}
		if c.cfg.ownMetadata() {
			opts.JWKS = c.jwksJSON
		} else {
			opts.MetadataURL = c.cfg.OpenIDMetadataURL
		}
		c.verify.v = botauth.New(c.ctx, opts)
	})
	return c.verify.v
}
