// Package botauth checks and signs Bot Framework tokens (reference/botframework.md §4): the
// Verifier of inbound bearer tokens against an OpenID metadata document's JWKS (keyfunc), with
// the Bot Framework's key endorsements read from the raw JWKS; brief refusal reasons that never
// echo a token; and reading the RSA key the bridge signs its own tokens with.
package botauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

// Defaults of Options.
const (
	// DefaultLeeway is the clock skew allowed on nbf and exp, as botbuilder allows (300 s).
	DefaultLeeway = 5 * time.Minute
	// DefaultTimeout bounds one resolution of the metadata and the first JWKS fetch.
	DefaultTimeout = 10 * time.Second
	// DefaultFailureMemo is how long a failed resolution is remembered before it is tried again.
	DefaultFailureMemo = 10 * time.Second
)

// ClaimServiceURL is the claim that binds a channel's token to the activity's serviceUrl.
const ClaimServiceURL = "serviceurl"

// ErrNoKeys is returned, wrapping the cause, while the keys cannot be had (the metadata or the
// JWKS is unreachable or unreadable). Callers answer 503, never a pass.
var ErrNoKeys = errors.New("token validation keys unavailable")

// ErrRefused matches every *RefusedError.
var ErrRefused = errors.New("unauthorized")

// RefusedError is a refused token: Reason says why, briefly, and never quotes the token.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return "unauthorized: " + e.Reason }

// Is makes a RefusedError match ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func refuse(reason string) error { return &RefusedError{Reason: reason} }

// Options configure a Verifier. Audience and one of MetadataURL or JWKS are required.
type Options struct {
	// MetadataURL is the OpenID metadata document whose jwks_uri publishes the keys. It is
	// fetched on first use (the identity provider may not be reachable at start-up); keyfunc
	// then watches the jwks_uri.
	MetadataURL string
	// JWKS, when set, is a fixed key set (the bridge's own), used instead of MetadataURL.
	JWKS []byte
	// Issuers are the accepted iss values. Empty: the metadata document's issuer.
	Issuers []string
	// Audience is the required aud.
	Audience string
	// AltAudiences are further aud values accepted instead of Audience.
	AltAudiences []string
	// Methods are the accepted signing algorithms. Default: RS256.
	Methods []string
	// Leeway is the clock skew allowed on nbf and exp. Default: DefaultLeeway.
	Leeway time.Duration
	// Endorsements turns on the endorsement check of Bind: each key's "endorsements" member,
	// which keyfunc drops, is read from the same JWKS bytes keyfunc fetches.
	Endorsements bool
	// Client fetches the metadata and the JWKS. Default: a client with Timeout.
	Client *http.Client
	// Timeout bounds one resolution, and each JWKS fetch. Default: DefaultTimeout.
	Timeout time.Duration
	// FailureMemo is how long a failed resolution is answered from memory. Default:
	// DefaultFailureMemo.
	FailureMemo time.Duration
	// RefreshInterval, UnknownKIDEvery and RateLimitWaitMax tune keyfunc's refreshes (the
	// periodic one, the one an unknown kid triggers, and how long a request may wait for the
	// latter). Zero: keyfunc's defaults.
	RefreshInterval, UnknownKIDEvery, RateLimitWaitMax time.Duration
	// Name says whose keys these are in log lines, e.g. "bot token keys".
	Name string
	// Log receives resolution and refresh events; never a token.
	Log zerolog.Logger
}

func (o Options) withDefaults() Options {
	if len(o.Methods) == 0 {
		o.Methods = []string{jwt.SigningMethodRS256.Alg()}
	}
	if o.Leeway == 0 {
		o.Leeway = DefaultLeeway
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.FailureMemo == 0 {
		o.FailureMemo = DefaultFailureMemo
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Name == "" {
		o.Name = "token keys"
	}
	return o
}

// Verifier checks inbound Bot Framework bearer tokens: scheme, algorithm, signature, issuer,
// audience, nbf and exp (required), and, in Bind, the serviceurl claim and the key's
// endorsements. It is safe for concurrent use.
type Verifier struct {
	opts Options
	ctx  context.Context // ends keyfunc's refresh goroutine

	mu       sync.Mutex
	kf       keyfunc.Keyfunc
	issuers  []string
	failedAt time.Time
	err      error

	endorsements endorsementSet
}

// New returns a Verifier; nothing is fetched before the first token. ctx ends the background
// refresh of the keys.
func New(ctx context.Context, opts Options) *Verifier {
	return &Verifier{opts: opts.withDefaults(), ctx: ctx}
}

// Token is a verified token: its claims and the id of the key that signed it.
type Token struct {
	Claims jwt.MapClaims
	Kid    string
}

// Verify checks the token of an Authorization header value. It returns a *RefusedError, or an
// error wrapping ErrNoKeys while the keys cannot be had.
func (v *Verifier) Verify(ctx context.Context, authorization string) (*Token, error) {
	scheme, raw, ok := strings.Cut(authorization, " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, refuse("a bearer token is required")
	}
	kf, issuers, err := v.keys(ctx)
	if err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	t, err := jwt.ParseWithClaims(raw, claims, kf.KeyfuncCtx(ctx),
		jwt.WithValidMethods(v.opts.Methods),
		jwt.WithAudience(append([]string{v.opts.Audience}, v.opts.AltAudiences...)...),
		jwt.WithLeeway(v.opts.Leeway),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		return nil, refuse(Reason(err))
	}
	if iss, _ := claims.GetIssuer(); !slices.Contains(issuers, iss) {
		return nil, refuse(Reason(jwt.ErrTokenInvalidIssuer))
	}
	kid, _ := t.Header["kid"].(string)
	return &Token{Claims: claims, Kid: kid}, nil
}

// Bind checks what ties a channel's token to the activity it came with: the serviceurl claim
// equals serviceURL exactly, and, with Options.Endorsements, the signing key is endorsed for
// channelID (a key without endorsements, or with an empty list, signs for any channel, as
// botbuilder has it). It returns a *RefusedError.
func (v *Verifier) Bind(t *Token, serviceURL, channelID string) error {
	su, _ := t.Claims[ClaimServiceURL].(string)
	if su == "" || su != serviceURL {
		return refuse("the token's serviceurl claim does not match the activity's serviceUrl")
	}
	if !v.opts.Endorsements {
		return nil
	}
	e, known := v.endorsements.get(t.Kid)
	if !known || e.malformed {
		return refuse("the signing key's endorsements are unknown")
	}
	if len(e.channels) > 0 && !slices.Contains(e.channels, channelID) {
		return refuse("the signing key is not endorsed for the activity's channel")
	}
	return nil
}

// keys returns the keyfunc and the accepted issuers, resolving them on first use; a failure
// is remembered for FailureMemo.
func (v *Verifier) keys(ctx context.Context) (keyfunc.Keyfunc, []string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.kf != nil {
		return v.kf, v.issuers, nil
	}
	if v.err != nil && time.Since(v.failedAt) < v.opts.FailureMemo {
		return nil, nil, v.err
	}
	kf, issuers, err := v.resolve(ctx)
	if err != nil {
		v.err, v.failedAt = fmt.Errorf("%w: %w", ErrNoKeys, err), time.Now()
		v.opts.Log.Warn().Err(err).Msg("cannot resolve the " + v.opts.Name)
		return nil, nil, v.err
	}
	v.kf, v.issuers, v.err = kf, issuers, nil
	return kf, issuers, nil
}
