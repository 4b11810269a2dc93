package botauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

const (
	testIssuer   = "https://api.botframework.com"
	testAudience = "app-id"
	testService  = "https://smba.example/"
)

// testKeys are made once: RSA key generation is slow under -race.
var testKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var ks [2]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ks[i] = k
	}
	return ks
})

// idp is a fake identity provider: OpenID metadata and a JWKS of one key with endorsements,
// as login.botframework.com publishes them (botframework.md §4.1).
type idp struct {
	srv          *httptest.Server
	key          *rsa.PrivateKey
	kid          string
	endorsements any // the endorsements member as served; nil: absent
	metaHits     atomic.Int32
	down         atomic.Bool
}

func newIDP(t *testing.T) *idp {
	p := &idp{key: testKeys()[0], kid: "k1", endorsements: []string{"msteams", "lcw"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /meta", func(w http.ResponseWriter, _ *http.Request) {
		p.metaHits.Add(1)
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": testIssuer, "jwks_uri": p.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(jwksOf(p.key, p.kid, p.endorsements))
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func jwksOf(k *rsa.PrivateKey, kid string, endorsements any) []byte {
	enc := base64.RawURLEncoding.EncodeToString
	key := map[string]any{"kty": "RSA", "use": "sig", "kid": kid, "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	if endorsements != nil {
		key["endorsements"] = endorsements
	}
	b, _ := json.Marshal(map[string]any{"keys": []any{key}})
	return b
}

func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "serviceurl": testService, "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if mod != nil {
		mod(c)
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, c jwt.MapClaims, key any, kid string) string {
	t.Helper()
	tk := jwt.NewWithClaims(m, c)
	tk.Header["kid"] = kid
	s, err := tk.SignedString(key)
	require.NoError(t, err)
	return "Bearer " + s
}

func newVerifier(t *testing.T, o Options) *Verifier {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return New(ctx, o)
}

func TestVerify(t *testing.T) {
	p := newIDP(t)
	v := newVerifier(t, Options{MetadataURL: p.srv.URL + "/meta", Audience: testAudience, Endorsements: true})
	good := func(mod func(jwt.MapClaims)) string {
		return sign(t, jwt.SigningMethodRS256, claims(mod), p.key, p.kid)
	}
	for _, tc := range []struct {
		name, header, reason string
	}{
		{"valid", good(nil), ""},
		{"within the leeway", good(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() }), ""},
		{"no header", "", "a bearer token is required"},
		{"basic scheme", "Basic dXNlcjpwYXNz", "a bearer token is required"},
		{"empty bearer", "Bearer  ", "a bearer token is required"},
		{"malformed", "Bearer not.a.jwt", "the token is malformed"},
		{"another key under the kid", sign(t, jwt.SigningMethodRS256, claims(nil), testKeys()[1], p.kid), "the token's signature cannot be verified"},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, claims(nil), testKeys()[1], "attacker"), "the token's signature cannot be verified"},
		{"hs256 with the modulus", sign(t, jwt.SigningMethodHS256, claims(nil), p.key.N.Bytes(), p.kid), "the token's signature cannot be verified"},
		{"rs384 not allowed", sign(t, jwt.SigningMethodRS384, claims(nil), p.key, p.kid), "the token's signature cannot be verified"},
		{"expired", good(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-6 * time.Minute).Unix() }), "the token has expired"},
		{"not valid yet", good(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(10 * time.Minute).Unix() }), "the token is not valid yet"},
		{"no exp", good(func(c jwt.MapClaims) { delete(c, "exp") }), "the token lacks a required claim"},
		{"wrong audience", good(func(c jwt.MapClaims) { c["aud"] = "other" }), "the token's audience is wrong"},
		{"wrong issuer", good(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), "the token's issuer is not trusted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := v.Verify(context.Background(), tc.header)
			if tc.reason == "" {
				require.NoError(t, err)
				require.Equal(t, p.kid, tok.Kid)
				require.Equal(t, testService, tok.Claims[ClaimServiceURL])
				return
			}
			var re *RefusedError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.reason, re.Reason)
			require.ErrorIs(t, err, ErrRefused)
			require.Equal(t, "unauthorized: "+tc.reason, err.Error())
		})
	}
}

func TestBind(t *testing.T) {
	for _, tc := range []struct {
		name         string
		endorsements any
		check        bool
		serviceURL   string
		channel      string
		reason       string
		tokenNoClaim bool
	}{
		{name: "endorsed", endorsements: []string{"lcw"}, check: true, serviceURL: testService, channel: "lcw"},
		{name: "not endorsed", endorsements: []string{"lcw"}, check: true, serviceURL: testService, channel: "webchat", reason: "not endorsed"},
		{name: "empty list endorses any", endorsements: []string{}, check: true, serviceURL: testService, channel: "webchat"},
		{name: "absent member endorses any", check: true, serviceURL: testService, channel: "webchat"},
		{name: "malformed endorses none", endorsements: "lcw", check: true, serviceURL: testService, channel: "lcw", reason: "endorsements are unknown"},
		{name: "checks off", endorsements: []string{"lcw"}, serviceURL: testService, channel: "webchat"},
		{name: "another serviceUrl", endorsements: []string{"lcw"}, check: true, serviceURL: "https://evil.example/", channel: "lcw", reason: "serviceurl"},
		{name: "no serviceurl claim", check: false, serviceURL: testService, tokenNoClaim: true, reason: "serviceurl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newIDP(t)
			p.endorsements = tc.endorsements
			v := newVerifier(t, Options{MetadataURL: p.srv.URL + "/meta", Audience: testAudience, Endorsements: tc.check})
			tok, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, claims(func(c jwt.MapClaims) {
				if tc.tokenNoClaim {
					delete(c, ClaimServiceURL)
				}
			}), p.key, p.kid))
			require.NoError(t, err)
			err = v.Bind(tok, tc.serviceURL, tc.channel)
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			var re *RefusedError
			require.ErrorAs(t, err, &re)
			require.Contains(t, re.Reason, tc.reason)
		})
	}
}

func TestUnknownKidEndorsement(t *testing.T) {
	p := newIDP(t)
	v := newVerifier(t, Options{MetadataURL: p.srv.URL + "/meta", Audience: testAudience, Endorsements: true})
	tok, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, claims(nil), p.key, p.kid))
	require.NoError(t, err)
	tok.Kid = "not-in-the-jwks"
	require.ErrorIs(t, v.Bind(tok, testService, "lcw"), ErrRefused)
}

func TestFixedJWKS(t *testing.T) {
	k := testKeys()[1]
	v := newVerifier(t, Options{JWKS: jwksOf(k, "own", nil), Issuers: []string{"https://bridge.local"}, Audience: testAudience,
		Methods: []string{"RS256", "RS384", "RS512"}})
	tok, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS384, claims(func(c jwt.MapClaims) { c["iss"] = "https://bridge.local" }), k, "own"))
	require.NoError(t, err)
	require.Equal(t, "own", tok.Kid)
	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, claims(nil), k, "own"))
	require.ErrorIs(t, err, ErrRefused, "the metadata's issuer is not in the list")
}

func TestIssuersOption(t *testing.T) {
	p := newIDP(t)
	v := newVerifier(t, Options{MetadataURL: p.srv.URL + "/meta", Issuers: []string{"https://sts.example/"}, Audience: testAudience})
	_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, claims(nil), p.key, p.kid))
	require.ErrorIs(t, err, ErrRefused, "the metadata's issuer is not trusted when issuers are given")
	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, claims(func(c jwt.MapClaims) { c["iss"] = "https://sts.example/" }), p.key, p.kid))
	require.NoError(t, err)
}

func TestNoKeys(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		v := newVerifier(t, Options{MetadataURL: "http://127.0.0.1:1/meta", Audience: testAudience})
		_, err := v.Verify(context.Background(), "Bearer a.b.c")
		require.ErrorIs(t, err, ErrNoKeys)
		require.NotErrorIs(t, err, ErrRefused)
	})
	t.Run("failure remembered, then retried", func(t *testing.T) {
		p := newIDP(t)
		p.down.Store(true)
		v := newVerifier(t, Options{MetadataURL: p.srv.URL + "/meta", Audience: testAudience, FailureMemo: 200 * time.Millisecond})
		header := sign(t, jwt.SigningMethodRS256, claims(nil), p.key, p.kid)
		for range 3 {
			_, err := v.Verify(context.Background(), header)
			require.ErrorIs(t, err, ErrNoKeys)
		}
		require.Equal(t, int32(1), p.metaHits.Load(), "a failure is answered from memory")
		p.down.Store(false)
		require.Eventually(t, func() bool {
			_, err := v.Verify(context.Background(), header)
			return err == nil
		}, 5*time.Second, 20*time.Millisecond)
		require.Equal(t, int32(2), p.metaHits.Load())
	})
	for _, tc := range []struct{ name, body string }{
		{"not json", "{"},
		{"relative jwks_uri", `{"issuer":"x","jwks_uri":"/keys"}`},
		{"no jwks_uri", `{"issuer":"x"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(tc.body)) }))
			t.Cleanup(srv.Close)
			v := newVerifier(t, Options{MetadataURL: srv.URL, Audience: testAudience})
			_, err := v.Verify(context.Background(), "Bearer a.b.c")
			require.ErrorIs(t, err, ErrNoKeys)
		})
	}
}

func TestParseEndorsements(t *testing.T) {
	m, err := parseEndorsements([]byte(`{"keys":[{"kid":"a","endorsements":["msteams","lcw"]},{"kid":"b"},{"kid":"c","endorsements":[]},{"kid":"d","endorsements":"lcw"},{"kid":"e","endorsements":null}]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"msteams", "lcw"}, m["a"].channels)
	require.Equal(t, endorsement{}, m["b"])
	require.Empty(t, m["c"].channels)
	require.False(t, m["c"].malformed)
	require.True(t, m["d"].malformed, "a malformed list endorses nothing")
	require.Equal(t, endorsement{}, m["e"])
	_, err = parseEndorsements([]byte(`[`))
	require.Error(t, err)
}

// FuzzEndorsements checks the raw JWKS reader: no panic, and a key is never both endorsed for
// channels and malformed.
func FuzzEndorsements(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kid":"a","endorsements":["lcw"]}]}`))
	f.Add([]byte(`{"keys":[{"kid":"a","endorsements":[1,2]},{"kid":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseEndorsements(b)
		if err != nil {
			return
		}
		for kid, e := range m {
			if e.malformed && len(e.channels) > 0 {
				t.Fatalf("kid %q: malformed yet endorsed for %v", kid, e.channels)
			}
		}
	})
}

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{jwt.ErrTokenExpired, "the token has expired"},
		{jwt.ErrTokenNotValidYet, "the token is not valid yet"},
		{jwt.ErrTokenInvalidAudience, "the token's audience is wrong"},
		{jwt.ErrTokenInvalidIssuer, "the token's issuer is not trusted"},
		{jwt.ErrTokenRequiredClaimMissing, "the token lacks a required claim"},
		{jwt.ErrTokenSignatureInvalid, "the token's signature cannot be verified"},
		{jwt.ErrTokenMalformed, "the token is malformed"},
		{errors.New("other"), "the token is invalid"},
	} {
		t.Run(tc.want, func(t *testing.T) { require.Equal(t, tc.want, Reason(tc.err)) })
	}
}

func TestParseRSAKey(t *testing.T) {
	k := testKeys()[0]
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		pem  []byte
		ok   bool
	}{
		{"pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), true},
		{"pkcs1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), true},
		{"certificate first", append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...), true},
		{"no key", []byte("nothing"), false},
		{"bad pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRSAKey(tc.pem)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.True(t, got.Equal(k))
		})
	}
}
