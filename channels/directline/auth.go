package directline

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bfbridge/bfbridge/bridge"
)

// tokenClaims are the claims of a Direct Line token, in the real service's shape
// (directline.md §1): conv, user when known, and the registered claims. Clients read user
// from the token (botframework-directlinejs setUserId, Web Chat rectifyUserID).
type tokenClaims struct {
	Conv   string `json:"conv"`
	User   string `json:"user,omitempty"`
	Stream bool   `json:"stream,omitempty"` // a stream-URL token: valid 60 s, for the websocket only
	// Identity is the verified customer the site's server named with the secret (identity.go).
	Identity *bridge.Identity `json:"idn,omitempty"`
	jwt.RegisteredClaims
}

// principal is who a request authenticated as: the secret (any conversation) or a token (one).
type principal struct {
	secret  bool
	conv    string
	user    string
	stream  bool
	expires time.Time // a token's expiry
	// identity is the verified customer the token was issued for (nil: anonymous).
	identity *bridge.Identity
}

// may reports whether p may act on conversation id.
func (p principal) may(id string) bool { return p.secret || p.conv == id }

// tokens issues and checks the bridge's Direct Line tokens. They are HS256 JWTs whose key is
// derived from the Direct Line secret, so tokens stay valid across restarts with the same secret.
type tokens struct {
	secretSum [sha256.Size]byte // the secret is compared through its hash, so its length does not show
	key       []byte
	issuer    string
	ttl       time.Duration
	now       func() time.Time

	// verified remembers tokens whose signature and claims were checked, so that a client's
	// every POST costs a map lookup rather than an HMAC and a JSON decode; the expiry is still
	// checked on each use. At most maxVerified are kept.
	mu          sync.Mutex
	verified    map[string]principal
	maxVerified int
}

const maxVerified = 1 << 16

const streamTokenTTL = 60 * time.Second // "60 seconds to connect to the WebSocket" [START]

func newTokens(secret, issuer string, ttl time.Duration, now func() time.Time) *tokens {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("bfbridge directline token signing key v1"))
	return &tokens{secretSum: sha256.Sum256([]byte(secret)), key: mac.Sum(nil), issuer: issuer, ttl: ttl, now: now, verified: map[string]principal{}, maxVerified: maxVerified}
}

func (t *tokens) issue(conv, user string, identity *bridge.Identity, stream bool) (string, error) {
	now := t.now()
	ttl := t.ttl
	if stream {
		ttl = streamTokenTTL
	}
	c := tokenClaims{Conv: conv, User: user, Identity: identity, Stream: stream, RegisteredClaims: jwt.RegisteredClaims{
		ID:     randomString(9), // every token is distinct, even two issued in the same second
		Issuer: t.issuer, Audience: jwt.ClaimStrings{t.issuer},
		NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
}

// authenticate checks a bearer credential: the secret, or a token of ours. An expired token
// gives a 403 TokenExpired error; anything else that is not ours gives 401.
func (t *tokens) authenticate(cred string) (principal, *apiError) {
	if cred == "" {
		return principal{}, &apiError{Status: http.StatusUnauthorized, Code: CodeBadArgument, Message: "Missing token or secret"}
	}
	if sum := sha256.Sum256([]byte(cred)); subtle.ConstantTimeCompare(sum[:], t.secretSum[:]) == 1 {
		return principal{secret: true}, nil
	}
	t.mu.Lock()
	p, ok := t.verified[cred]
	t.mu.Unlock()
	if ok {
		if !t.now().Before(p.expires) {
			return principal{}, &apiError{Status: http.StatusForbidden, Code: CodeTokenExpired, Message: "Token expired"}
		}
		return p, nil
	}
	var c tokenClaims
	_, err := jwt.ParseWithClaims(cred, &c, func(*jwt.Token) (any, error) { return t.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(t.issuer), jwt.WithAudience(t.issuer),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(t.now))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return principal{}, &apiError{Status: http.StatusForbidden, Code: CodeTokenExpired, Message: "Token expired"}
	case err != nil || c.Conv == "":
		return principal{}, &apiError{Status: http.StatusUnauthorized, Code: CodeBadArgument, Message: "Invalid token or secret"}
	}
	p = principal{conv: c.Conv, user: c.User, stream: c.Stream, expires: c.ExpiresAt.Time, identity: c.Identity} // exp is required
	t.mu.Lock()
	if len(t.verified) >= t.maxVerified {
		for k := range t.verified { // make room: drop some, expired or not (they are checked again)
			delete(t.verified, k)
			if len(t.verified) < t.maxVerified*7/8 {
				break
			}
		}
	}
	t.verified[cred] = p
	t.mu.Unlock()
	return p, nil
}

// bearer returns the credential of an "Authorization: Bearer …" header, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// newConversationID returns a random, URL-safe conversation id: base64url without padding,
// so it has no '/', '?', '#', '|' or space.
func newConversationID() string {
	return randomString(16)
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// GenerateSecret returns a new random Direct Line secret.
func GenerateSecret() string { return randomString(32) }
