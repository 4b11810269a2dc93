package signin

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// fakeIdP is an OpenID provider as the token service meets one (reference/signin.md §3): OpenID
// discovery and a JWKS; the authorization endpoint (here it signs the user "alice" in at once and
// redirects back with ?code&state, §3 "proxy contract"); the token endpoint with the
// authorization_code grant checked against the PKCE S256 challenge (RFC 7636), refresh_token,
// and Entra ID's on-behalf-of grant (jwt-bearer, assertion, requested_token_use=on_behalf_of,
// §3 last bullet). Client authentication: client_secret_basic or client_secret_post.
type fakeIdP struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey
	client string
	secret string

	mu      sync.Mutex
	codes   map[string]authCode // code → what it was issued for
	seq     int
	obo     []url.Values // on-behalf-of requests received
	refresh int          // refresh grants served
	ttl     time.Duration
}

type authCode struct{ challenge, redirect string }

func newFakeIdP(t *testing.T, client, secret string) *fakeIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f := &fakeIdP{t: t, key: key, client: client, secret: secret, codes: map[string]authCode{}, ttl: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /jwks", f.jwks)
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIdP) issuer() string { return f.srv.URL }

func (f *fakeIdP) discovery(w http.ResponseWriter, _ *http.Request) {
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer": f.issuer(), "authorization_endpoint": f.issuer() + "/authorize", "token_endpoint": f.issuer() + "/token",
		"jwks_uri": f.issuer() + "/jwks", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported": []string{"S256"},
	})
}

func (f *fakeIdP) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := f.key.PublicKey
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// authorize checks the request and signs the user in without a page.
func (f *fakeIdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != f.client || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("redirect_uri") == "" || !strings.Contains(q.Get("scope"), "openid") {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.seq++
	code := "code-" + string(rune('a'+f.seq%26)) + randomHex(8)
	f.codes[code] = authCode{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
	f.mu.Unlock()
	u, _ := url.Parse(q.Get("redirect_uri"))
	rq := u.Query()
	rq.Set("code", code)
	rq.Set("state", q.Get("state"))
	u.RawQuery = rq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (f *fakeIdP) clientOK(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id, err := url.QueryUnescape(id); err == nil && ok {
		secret, _ = url.QueryUnescape(secret)
		return id == f.client && secret == f.secret
	}
	return id == f.client && secret == f.secret
}

func (f *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !f.clientOK(r) {
		oauthErr(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	form := r.PostForm
	switch form.Get("grant_type") {
	case "authorization_code":
		f.mu.Lock()
		ac, ok := f.codes[form.Get("code")]
		delete(f.codes, form.Get("code"))
		f.mu.Unlock()
		sum := sha256.Sum256([]byte(form.Get("code_verifier")))
		if !ok || ac.redirect != form.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != ac.challenge {
			oauthErr(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		f.answer(w, "access-alice-"+randomHex(6), "refresh-alice", true)
	case "refresh_token":
		if form.Get("refresh_token") != "refresh-alice" {
			oauthErr(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		f.mu.Lock()
		f.refresh++
		f.mu.Unlock()
		f.answer(w, "access-alice-refreshed", "", false)
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		f.mu.Lock()
		f.obo = append(f.obo, form)
		f.mu.Unlock()
		if form.Get("requested_token_use") != "on_behalf_of" || form.Get("assertion") == "" || form.Get("scope") == "" {
			oauthErr(w, http.StatusBadRequest, "invalid_request")
			return
		}
		f.answer(w, "obo-for-"+form.Get("scope"), "", false)
	default:
		oauthErr(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

func (f *fakeIdP) answer(w http.ResponseWriter, access, refresh string, idToken bool) {
	body := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(f.ttl / time.Second)}
	if refresh != "" {
		body["refresh_token"] = refresh
	}
	if idToken {
		body["id_token"] = f.sign(f.client, "alice", time.Hour)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// sign makes a token of the provider's for aud: an id_token, or a client's SSO token.
func (f *fakeIdP) sign(aud, sub string, ttl time.Duration) string {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": f.issuer(), "aud": aud, "sub": sub, "iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	t.Header["kid"] = "k1"
	s, err := t.SignedString(f.key)
	require.NoError(f.t, err)
	return s
}

func oauthErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}
