package botframework

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

// The Connector API refuses the bot's calls without a good token, before reading the body, and
// nothing reaches the hub.
func TestConnectorRefusesBadTokens(t *testing.T) {
	r := newRig(t, nil)
	r.start("c")
	key, kid := r.ch.key.priv, r.ch.KeyID()
	with := func(mod func(jwt.MapClaims)) string {
		c := botClaims()
		mod(c)
		return signWith(t, c, key, kid)
	}
	hs256, err := jwt.NewWithClaims(jwt.SigningMethodHS256, botClaims()).SignedString([]byte(testPassword))
	require.NoError(t, err)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, botClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	// What the bridge sends the bot (aud = app id, serviceurl, no appid) must not open the
	// Connector API when replayed.
	channelTok, err := r.ch.channelAuthorization(r.ch.ServiceURL())
	require.NoError(t, err)

	cases := []struct {
		name   string
		header string
	}{
		{name: "missing header"},
		{name: "basic scheme", header: "Basic " + testAppID + ":" + testPassword},
		{name: "empty bearer", header: "Bearer "},
		{name: "malformed", header: "Bearer abc.def"},
		{name: "forged", header: "Bearer " + signWith(t, botClaims(), otherKey(), kid)},
		{name: "expired", header: "Bearer " + with(func(c jwt.MapClaims) {
			c["nbf"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-10 * time.Minute).Unix()
		})},
		{name: "not yet valid", header: "Bearer " + with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(10 * time.Minute).Unix() })},
		{name: "no exp", header: "Bearer " + with(func(c jwt.MapClaims) { delete(c, "exp") })},
		{name: "wrong audience", header: "Bearer " + with(func(c jwt.MapClaims) { c["aud"] = "https://graph.microsoft.com" })},
		{name: "wrong issuer", header: "Bearer " + with(func(c jwt.MapClaims) { c["iss"] = "https://elsewhere.example" })},
		{name: "other app", header: "Bearer " + with(func(c jwt.MapClaims) { c["appid"], c["azp"] = "other-app", "other-app" })},
		{name: "no app id", header: "Bearer " + with(func(c jwt.MapClaims) { delete(c, "appid"); delete(c, "azp") })},
		{name: "hs256 with the password", header: "Bearer " + hs256},
		{name: "alg none", header: "Bearer " + none},
		{name: "replayed channel token", header: channelTok},
	}
	body := []byte(`{"type":"message","text":"should not be recorded"}`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, r.url+"/v3/conversations/c/activities", strings.NewReader(string(body)))
			require.NoError(t, err)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			requireError(t, resp.StatusCode, b, http.StatusUnauthorized, CodeUnauthorized)
			require.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
			require.Empty(t, r.log("c"), "nothing was recorded")
			require.Empty(t, r.customer.sent())
		})
	}

	// Every Connector route is guarded.
	for _, rt := range []struct{ method, path string }{
		{"GET", "/v3/conversations"}, {"POST", "/v3/conversations"},
		{"POST", "/v3/conversations/c/activities/history"}, {"PUT", "/v3/conversations/c/activities/x"},
		{"DELETE", "/v3/conversations/c/activities/x"}, {"GET", "/v3/conversations/c/members"},
		{"GET", "/v3/conversations/c/members/u1"}, {"DELETE", "/v3/conversations/c/members/u1"},
		{"GET", "/v3/conversations/c/pagedmembers"}, {"GET", "/v3/conversations/c/activities/x/members"},
		{"POST", "/v3/conversations/c/attachments"}, {"GET", "/v3/attachments/x"}, {"GET", "/v3/attachments/x/views/original"},
	} {
		status, b := r.call(rt.method, rt.path, "", []byte(`{}`))
		requireError(t, status, b, http.StatusUnauthorized, CodeUnauthorized)
	}

	// The good token passes, also within the 5-minute leeway after expiry.
	// So does one for Azure Bot Service's Connector audience, which the Agents SDK asks for
	// (ConnectorAudience), signed by the bridge.
	lateTok := with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() })
	connectorTok := with(func(c jwt.MapClaims) { c["aud"] = ConnectorAudience })
	for _, tok := range []string{r.devToken(), lateTok, connectorTok} {
		status, b := r.call(http.MethodPost, "/v3/conversations/c/activities", tok, body)
		require.Equal(t, http.StatusOK, status, "%s", b)
	}
	require.Len(t, r.log("c"), 3)
}

// The dev token endpoint behaves like Entra ID's client-credentials grant.
func TestDevTokenEndpoint(t *testing.T) {
	r := newRig(t, nil)
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {testAppID}, "client_secret": {testPassword}, "scope": {"https://bridge.local/.default"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range good {
			f[key] = vs
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	cases := []struct {
		name   string
		body   string
		basic  bool
		status int
		code   string
		aud    string // the token's aud, when not https://bridge.local
	}{
		{name: "good", body: good.Encode(), status: 200},
		{name: "basic auth", body: url.Values{"grant_type": {"client_credentials"}, "scope": {"https://bridge.local/.default"}}.Encode(), basic: true, status: 200},
		{name: "wrong secret", body: with("client_secret", "nope").Encode(), status: 401, code: "invalid_client"},
		{name: "no secret", body: with("client_secret", "").Encode(), status: 401, code: "invalid_client"},
		{name: "wrong client", body: with("client_id", "someone").Encode(), status: 401, code: "invalid_client"},
		{name: "no client", body: with("client_id", "").Encode(), status: 400, code: "invalid_request"},
		{name: "password grant", body: with("grant_type", "password").Encode(), status: 400, code: "unsupported_grant_type"},
		{name: "no scope", body: with("scope", "").Encode(), status: 400, code: "invalid_scope"},
		{name: "two scopes", body: with("scope", "a/.default b/.default").Encode(), status: 400, code: "invalid_scope"},
		{name: "bare .default", body: with("scope", "/.default").Encode(), status: 400, code: "invalid_scope"},
		// a token the Connector API would refuse is not issued (RFC 6749 §5.2 invalid_scope)
		{name: "another resource", body: with("scope", "https://graph.microsoft.com/.default").Encode(), status: 400, code: "invalid_scope"},
		{name: "the Connector audience", body: with("scope", ConnectorAudience+"/.default").Encode(), status: 200, aud: ConnectorAudience},
		{name: "oversize", body: good.Encode() + "&pad=" + strings.Repeat("x", maxTokenForm), status: 400, code: "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, r.url+LoginPath+TokenPath, strings.NewReader(tc.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.basic {
				req.SetBasicAuth(testAppID, testPassword)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			if tc.status != 200 {
				var e oauthError
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
				require.Equal(t, tc.code, e.Code)
				return
			}
			var tr tokenResponse
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&tr))
			require.Equal(t, "Bearer", tr.TokenType)
			require.Equal(t, 3600, tr.ExpiresIn)
			require.Equal(t, 3600, tr.ExtExpiresIn)
			claims := jwt.MapClaims{}
			_, err = jwt.ParseWithClaims(tr.AccessToken, claims, func(*jwt.Token) (any, error) { return &r.ch.key.priv.PublicKey, nil })
			require.NoError(t, err)
			require.Equal(t, DefaultIssuer, claims["iss"])
			wantAud := "https://bridge.local"
			if tc.aud != "" {
				wantAud = tc.aud
			}
			require.Equal(t, wantAud, claims["aud"], "the scope without /.default")
			require.Equal(t, testAppID, claims["appid"])
			require.Equal(t, testAppID, claims["azp"])
		})
	}
	t.Run("GET is not routed", func(t *testing.T) {
		resp, err := http.Get(r.url + LoginPath + TokenPath)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})
}

// The metadata and JWKS are what botbuilder's OpenIdMetadata reads.
func TestOpenIDMetadataAndKeys(t *testing.T) {
	r := newRig(t, func(c *Config) { c.ChannelID = "custom-channel" })
	var meta map[string]any
	resp, err := http.Get(r.url + OpenIDMetadataPath)
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&meta))
	_ = resp.Body.Close()
	require.Equal(t, DefaultIssuer, meta["issuer"])
	require.Equal(t, r.url+KeysPath, meta["jwks_uri"])
	require.Equal(t, r.url+LoginPath+TokenPath, meta["token_endpoint"])
	require.Equal(t, []any{"RS256"}, meta["id_token_signing_alg_values_supported"])

	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	resp, err = http.Get(r.url + KeysPath)
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	_ = resp.Body.Close()
	require.Len(t, set.Keys, 1)
	k := set.Keys[0]
	require.Equal(t, r.ch.KeyID(), k["kid"])
	require.Equal(t, "RSA", k["kty"])
	require.Equal(t, "AQAB", k["e"])
	require.NotEmpty(t, k["n"])
	end := k["endorsements"].([]any)
	require.Contains(t, end, "directline")
	require.Contains(t, end, "msteams")
	require.Contains(t, end, "custom-channel", "the stamped channel id is endorsed")
}

// The signing key persists in its file, and a new key always has a new kid.
func TestSigningKeyFile(t *testing.T) {
	dir := t.TempDir()
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{}, zerolog.Nop())
	t.Cleanup(hub.Close)
	newCh := func(file string) *Channel {
		c, err := New(Config{PublicURL: "http://127.0.0.1:1", BotEndpoint: "http://127.0.0.1:2/api/messages", SigningKeyFile: file}, hub, zerolog.Nop())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	a := filepath.Join(dir, "keys", "a.pem")
	first := newCh(a)
	info, err := os.Stat(a)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	require.Equal(t, first.KeyID(), newCh(a).KeyID(), "same file, same key, same kid")
	require.NotEqual(t, first.KeyID(), newCh(filepath.Join(dir, "b.pem")).KeyID(), "a new key gets a new kid")
	require.NotEqual(t, first.KeyID(), newCh("").KeyID())

	// A PKCS#1 key works too, and its kid is its thumbprint.
	pkcs1 := filepath.Join(dir, "pkcs1.pem")
	require.NoError(t, os.WriteFile(pkcs1, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(otherKey())}), 0o600))
	require.Equal(t, thumbprint(&otherKey().PublicKey), newCh(pkcs1).KeyID())

	bad := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not a key"), 0o600))
	_, err = New(Config{PublicURL: "http://127.0.0.1:1", BotEndpoint: "http://127.0.0.1:2/", SigningKeyFile: bad}, hub, zerolog.Nop())
	require.ErrorContains(t, err, "no PEM private key")
}

// RFC 7638 §3.1's example key has a known thumbprint.
func TestThumbprintRFC7638(t *testing.T) {
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	b, err := b64decode(n)
	require.NoError(t, err)
	pub := &rsa.PublicKey{N: b, E: 65537}
	require.Equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", thumbprint(pub))
}

// With external metadata, the bot's tokens are checked against the identity provider's keys,
// resolved through its metadata with keyfunc; the bridge's own key no longer opens the API.
func TestExternalOpenIDMetadata(t *testing.T) {
	idpKey := newSigningKey(otherKey())
	var down atomic.Bool
	var idpURL string
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/tenant/v2.0/.well-known/openid-configuration":
			writeJSON(w, 200, map[string]string{"issuer": "https://login.example/tenant/v2.0", "jwks_uri": idpURL + "/tenant/discovery/v2.0/keys"})
		case "/tenant/discovery/v2.0/keys":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(idpKey.publicJWKS(nil))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(idp.Close)
	idpURL = idp.URL

	r := newRig(t, func(c *Config) { c.OpenIDMetadataURL = idpURL + "/tenant/v2.0/.well-known/openid-configuration" })
	r.start("x")
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		now := time.Now()
		c := jwt.MapClaims{"iss": "https://login.example/tenant/v2.0", "aud": "https://api.botframework.com",
			"azp": testAppID, "ver": "2.0", "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	body := []byte(`{"type":"message","text":"x"}`)
	post := func(tok string) (int, []byte) {
		return r.call(http.MethodPost, "/v3/conversations/x/activities", tok, body)
	}

	status, b := post(signWith(t, claims(nil), idpKey.priv, idpKey.kid))
	require.Equal(t, http.StatusOK, status, "%s", b)
	status, b = post(signWith(t, botClaims(), r.ch.key.priv, r.ch.key.kid)) // the bridge's own tokens are not Entra ID's
	requireError(t, status, b, http.StatusUnauthorized, CodeUnauthorized)
	status, b = post(signWith(t, claims(func(c jwt.MapClaims) { c["iss"] = DefaultIssuer }), idpKey.priv, idpKey.kid))
	requireError(t, status, b, http.StatusUnauthorized, CodeUnauthorized)
	status, b = post(signWith(t, claims(func(c jwt.MapClaims) { c["aud"] = DefaultIssuer }), idpKey.priv, idpKey.kid))
	requireError(t, status, b, http.StatusUnauthorized, CodeUnauthorized)
	require.Len(t, r.log("x"), 1)

	t.Run("metadata unavailable", func(t *testing.T) {
		down.Store(true)
		r := newRig(t, func(c *Config) { c.OpenIDMetadataURL = idpURL + "/tenant/v2.0/.well-known/openid-configuration" })
		r.start("y")
		status, b := r.call(http.MethodPost, "/v3/conversations/y/activities", signWith(t, claims(nil), idpKey.priv, idpKey.kid), body)
		requireError(t, status, b, http.StatusServiceUnavailable, CodeServiceError)
		require.Empty(t, r.log("y"))
	})
	t.Run("configured issuers", func(t *testing.T) {
		down.Store(false)
		r := newRig(t, func(c *Config) {
			c.OpenIDMetadataURL = idpURL + "/tenant/v2.0/.well-known/openid-configuration"
			c.TokenIssuers = []string{"https://sts.example/tenant/"}
		})
		r.start("z")
		v1 := claims(func(c jwt.MapClaims) {
			c["iss"] = "https://sts.example/tenant/"
			c["appid"] = testAppID
			delete(c, "azp")
		})
		status, b := r.call(http.MethodPost, "/v3/conversations/z/activities", signWith(t, v1, idpKey.priv, idpKey.kid), body)
		require.Equal(t, http.StatusOK, status, "%s", b)
		status, b = r.call(http.MethodPost, "/v3/conversations/z/activities", signWith(t, claims(nil), idpKey.priv, idpKey.kid), body)
		requireError(t, status, b, http.StatusUnauthorized, CodeUnauthorized)
	})
}

// Config defaults and validation.
func TestConfig(t *testing.T) {
	c := Config{PublicURL: "http://h:8080/", BotEndpoint: "http://b/api/messages"}.withDefaults()
	require.Equal(t, "http://h:8080", c.PublicURL)
	require.Equal(t, "http://h:8080/", c.serviceURL())
	require.Equal(t, "directline", c.ChannelID)
	require.Equal(t, DefaultIssuer, c.Issuer)
	require.Equal(t, "http://h:8080"+OpenIDMetadataPath, c.OpenIDMetadataURL)
	require.True(t, c.ownMetadata())
	require.Equal(t, DefaultIssuer, c.OAuthScope)
	require.Equal(t, []string{DefaultIssuer}, c.TokenIssuers)
	require.Equal(t, 15*time.Second, c.DeliveryTimeout)

	ext := Config{PublicURL: "http://h", BotEndpoint: "http://b", OpenIDMetadataURL: "https://login.microsoftonline.com/botframework.com/v2.0/.well-known/openid-configuration"}.withDefaults()
	require.False(t, ext.ownMetadata())
	require.Equal(t, "https://api.botframework.com", ext.OAuthScope)
	require.Empty(t, ext.TokenIssuers, "taken from the metadata")

	for _, bad := range []Config{
		{BotEndpoint: "http://b"},
		{PublicURL: "h:8080", BotEndpoint: "http://b"},
		{PublicURL: "http://h?x=1", BotEndpoint: "http://b"},
		{PublicURL: "http://h"},
		{PublicURL: "http://h", BotEndpoint: "ftp://b"},
		{PublicURL: "http://h", BotEndpoint: "http://b", DeliveryTimeout: -time.Second},
		{PublicURL: "http://h", BotEndpoint: "http://b", BotAppPassword: "x"},
		{PublicURL: "http://h", BotEndpoint: "http://b", OpenIDMetadataURL: "/relative"},
	} {
		require.Error(t, bad.Validate(), "%+v", bad)
	}
	_, err := New(Config{PublicURL: "http://h", BotEndpoint: "http://b"}, nil, zerolog.Nop())
	require.Error(t, err)
}

func b64decode(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return new(big.Int).SetBytes(b), err
}
