package omnichannel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/internal/jwtutil"
)

// Inbound token validation (botframework.md §4.1): Omnichannel, as a Bot Framework channel,
// signs each POST to the bot with an RS256 JWT whose keys the OpenID metadata's jwks_uri
// publishes, each key with an extra "endorsements" list of channel ids. The checks, as
// botbuilder's ParameterizedBotFrameworkAuthentication does them: Bearer scheme; RS256;
// iss = Config.Issuer; aud = Config.AppID; exp required, nbf/exp with 5 minutes of leeway;
// serviceurl claim = the activity's serviceUrl, exactly; the key's endorsements contain the
// activity's channelId when the list is not empty.

const (
	// clockLeeway is the clock skew allowed, as botbuilder allows (300 s).
	clockLeeway = 5 * time.Minute
	// maxMetadataBytes bounds a fetched OpenID metadata document or JWKS.
	maxMetadataBytes = 1 << 20
	// metadataRetry is how long a failed metadata fetch is remembered before it is tried again.
	metadataRetry = 10 * time.Second
	// keysRefresh is how often keyfunc refreshes the JWKS (botbuilder caches keys for 24 h and
	// refreshes on an unknown kid).
	keysRefresh = time.Hour
	// unknownKidRefresh spaces the refreshes an unknown kid triggers.
	unknownKidRefresh = time.Minute
)

// claimServiceURL is the claim that binds a token to the activity's serviceUrl.
const claimServiceURL = "serviceurl"

// verifier checks Omnichannel's tokens. The OpenID metadata is fetched on first use (the
// identity provider may not be reachable when New runs); keyfunc then watches the jwks_uri, and
// the same JWKS bytes keyfunc fetches are read for the endorsements it drops.
type verifier struct {
	cfg    Config
	client *http.Client
	log    zerolog.Logger
	ctx    context.Context // ends keyfunc's refresh goroutine

	mu       sync.Mutex
	kf       keyfunc.Keyfunc
	failedAt time.Time
	err      error

	endMu        sync.RWMutex
	endorsements map[string]endorsement // by kid, from the last JWKS fetched
}

// endorsement is a key's endorsements member: the channel ids it may sign for (none: any), or
// malformed (then it signs for none).
type endorsement struct {
	channels  []string
	malformed bool
}

func newVerifier(ctx context.Context, cfg Config, client *http.Client, log zerolog.Logger) *verifier {
	return &verifier{cfg: cfg, client: client, log: log, ctx: ctx}
}

// token is a verified inbound token: its claims and key id.
type token struct {
	claims jwt.MapClaims
	kid    string
}

// verify checks the Authorization header's token: signature, algorithm, issuer, audience and
// lifetime. The activity-bound checks are in bind. It returns an *apiError: 401, or 503 while
// the keys cannot be had.
func (v *verifier) verify(ctx context.Context, header string) (*token, error) {
	scheme, raw, ok := strings.Cut(header, " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, unauthorized("a bearer token is required")
	}
	kf, err := v.keys(ctx)
	if err != nil {
		return nil, &apiError{Status: http.StatusServiceUnavailable, Code: CodeServiceError, Message: ErrNoKeys.Error(), Err: err}
	}
	claims := jwt.MapClaims{}
	t, err := jwt.ParseWithClaims(raw, claims, kf.KeyfuncCtx(ctx),
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.AppID),
		jwt.WithLeeway(clockLeeway),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		return nil, unauthorized(jwtutil.Reason(err))
	}
	kid, _ := t.Header["kid"].(string)
	return &token{claims: claims, kid: kid}, nil
}

// bind checks what ties the token to the activity: the serviceurl claim and the endorsement
// of the activity's channelId.
func (v *verifier) bind(t *token, a *activity.Activity) error {
	su, _ := t.claims[claimServiceURL].(string)
	if su == "" || su != a.ServiceURL {
		return unauthorized("the token's serviceurl claim does not match the activity's serviceUrl")
	}
	if v.cfg.SkipEndorsements {
		return nil
	}
	v.endMu.RLock()
	e, known := v.endorsements[t.kid]
	v.endMu.RUnlock()
	if !known || e.malformed {
		return unauthorized("the signing key's endorsements are unknown")
	}
	if len(e.channels) > 0 && !slices.Contains(e.channels, a.ChannelID) {
		return unauthorized("the signing key is not endorsed for the activity's channel")
	}
	return nil
}

// keys returns the keyfunc over the jwks_uri, resolving the metadata on first use; a failure
// is remembered for metadataRetry.
func (v *verifier) keys(ctx context.Context) (keyfunc.Keyfunc, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.kf != nil {
		return v.kf, nil
	}
	if v.err != nil && time.Since(v.failedAt) < metadataRetry {
		return nil, v.err
	}
	kf, err := v.resolve(ctx)
	if err != nil {
		v.err, v.failedAt = err, time.Now()
		v.log.Warn().Err(err).Msg("cannot resolve the keys of omnichannel's tokens")
		return nil, err
	}
	v.kf, v.err = kf, nil
	return kf, nil
}

// openIDMetadata is the part of the OpenID metadata document read.
type openIDMetadata struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

func (v *verifier) resolve(ctx context.Context) (keyfunc.Keyfunc, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	b, err := getBounded(ctx, v.client, v.cfg.OpenIDMetadataURL)
	if err != nil {
		return nil, fmt.Errorf("openid metadata: %w", err)
	}
	var m openIDMetadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("openid metadata: %w", err)
	}
	if err := checkURL("jwks_uri", m.JWKSURI); err != nil {
		return nil, fmt.Errorf("openid metadata: %w", err)
	}
	// keyfunc fetches through a client whose transport also reads each JWKS for endorsements,
	// so that the keys and their endorsements always come from the same document.
	tee := &http.Client{Transport: &endorsementReader{next: transportOf(v.client), v: v}, Timeout: v.client.Timeout}
	noSilentFirstError := false
	kf, err := keyfunc.NewDefaultOverrideCtx(v.ctx, []string{m.JWKSURI}, keyfunc.Override{
		Client:                    tee,
		HTTPTimeout:               15 * time.Second,
		NoErrorReturnFirstHTTPReq: &noSilentFirstError,
		RefreshInterval:           keysRefresh,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(unknownKidRefresh), 1),
		// A request with an unknown kid waits for the refresh limiter only when its next token is
		// due within this bound; otherwise it is refused at once (rate.Limiter.Wait does not wait
		// past the deadline), so forged kids cannot hold requests for the limiter's minute.
		RateLimitWaitMax: 2 * time.Second,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				v.log.Warn().Err(err).Str("jwks_uri", u).Msg("refresh omnichannel token keys")
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", m.JWKSURI, err)
	}
	v.log.Info().Str("jwks_uri", m.JWKSURI).Msg("omnichannel token keys resolved")
	return kf, nil
}

// endorsementReader is an http.RoundTripper that reads the endorsements of every JWKS that
// passes through it (keyfunc's jwkset keeps only the standard members).
type endorsementReader struct {
	next http.RoundTripper
	v    *verifier
}

func (e *endorsementReader) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := e.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(b) > maxMetadataBytes {
		return nil, fmt.Errorf("jwks over %d bytes", maxMetadataBytes)
	}
	if m, err := parseEndorsements(b); err == nil {
		e.v.endMu.Lock()
		e.v.endorsements = m
		e.v.endMu.Unlock()
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}

// parseEndorsements reads each key's endorsements from a raw JWKS, by kid. A key without the
// member, or with an empty list, may sign for any channel (botbuilder skips the check then); a
// member that is not a list of strings is malformed, and the key is trusted for none.
func parseEndorsements(b []byte) (map[string]endorsement, error) {
	var set struct {
		Keys []struct {
			Kid          string          `json:"kid"`
			Endorsements json.RawMessage `json:"endorsements"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	m := make(map[string]endorsement, len(set.Keys))
	for _, k := range set.Keys {
		var e endorsement
		if len(k.Endorsements) > 0 && string(k.Endorsements) != "null" {
			e.malformed = json.Unmarshal(k.Endorsements, &e.channels) != nil
		}
		m[k.Kid] = e
	}
	return m, nil
}

// getBounded GETs a JSON document of at most maxMetadataBytes.
func getBounded(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadataBytes {
		return nil, fmt.Errorf("%s: over %d bytes", u, maxMetadataBytes)
	}
	return b, nil
}

// transportOf returns the client's transport, or the default one.
func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}
