package omnichannel

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Tokens botbuilder would refuse (botframework.md §4.1) get 401 in the Connector's error shape,
// and nothing reaches the Hub or the bot; a token within the 5-minute leeway passes.
func TestBadTokensAreRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	other := testKey(t)
	now := time.Now()
	cases := []struct {
		name    string
		opts    tokenOpts
		mod     func(a *activity.Activity)
		status  int
		message string
	}{
		{name: "missing header", opts: tokenOpts{header: "-"}, message: "a bearer token is required"},
		{name: "basic scheme", opts: tokenOpts{header: "Basic dXNlcjpwYXNz"}, message: "a bearer token is required"},
		{name: "not a jwt", opts: tokenOpts{header: "Bearer not.a.jwt"}, message: "malformed"},
		{name: "forged: another key under the real kid", opts: tokenOpts{key: other}, message: "signature"},
		{name: "forged: an unknown kid", opts: tokenOpts{key: other, kid: "attacker"}, message: "signature"},
		{name: "expired beyond the leeway", opts: tokenOpts{claims: func(c jwt.MapClaims) {
			c["nbf"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-6*time.Minute).Unix()
		}}, message: "expired"},
		{name: "not valid yet", opts: tokenOpts{claims: func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Minute).Unix() }}, message: "not valid yet"},
		{name: "no expiry", opts: tokenOpts{claims: func(c jwt.MapClaims) { delete(c, "exp") }}, message: "required claim"},
		{name: "wrong audience", opts: tokenOpts{claims: func(c jwt.MapClaims) { c["aud"] = "another-bot" }}, message: "audience"},
		{name: "wrong issuer", opts: tokenOpts{claims: func(c jwt.MapClaims) { c["iss"] = "https://bridge.local" }}, message: "issuer"},
		{name: "serviceurl of another service", opts: tokenOpts{claims: func(c jwt.MapClaims) { c["serviceurl"] = "https://evil.example/" }}, message: "serviceurl"},
		{name: "no serviceurl", opts: tokenOpts{claims: func(c jwt.MapClaims) { delete(c, "serviceurl") }}, message: "serviceurl"},
		{name: "unendorsed channel", mod: func(a *activity.Activity) { a.ChannelID = "webchat" }, message: "endorsed"},
		{name: "hs256 with the public key", opts: tokenOpts{header: "Bearer " + hs256Token(t, r.oc)}, message: "signature"},
		{name: "alg none", opts: tokenOpts{header: "Bearer " + noneToken(t, r.oc)}, message: "signature"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conv := "bad-" + string(rune('a'+i))
			a := r.oc.message(conv, "secret words")
			if tc.mod != nil {
				tc.mod(a)
			}
			status, body := r.oc.post(a, tc.opts)
			require.Equal(t, http.StatusUnauthorized, status, body)
			var e errorBody
			require.NoError(t, json.Unmarshal([]byte(body), &e), body)
			require.Equal(t, CodeUnauthorized, e.Error.Code)
			require.Contains(t, e.Error.Message, tc.message)
			_, err := r.hub.ConversationByLeg(context.Background(), Name, conv)
			require.ErrorIs(t, err, bridge.ErrUnknownConversation, "nothing reached the Hub")
		})
	}
	require.Empty(t, r.bot.received(), "nothing reached the bot")

	a := r.oc.message("leeway", "hi")
	status, body := r.oc.post(a, tokenOpts{claims: func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() }})
	require.Equal(t, http.StatusOK, status, "expired 2 minutes ago is within the leeway: %s", body)
	r.waitTexts("leeway", "echo: hi")
}

// An empty endorsements list, or endorsement checks turned off, accepts any channel id.
func TestEndorsementsOptional(t *testing.T) {
	t.Parallel()
	t.Run("empty list", func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.oc.setEndorsements([]string{})
		a := r.oc.message("e-1", "hi")
		a.ChannelID = "webchat"
		status, body := r.oc.post(a, tokenOpts{})
		require.Equal(t, http.StatusOK, status, body)
	})
	t.Run("checks off", func(t *testing.T) {
		r := newRig(t, rigOptions{cfg: func(c *Config) { c.SkipEndorsements = true }})
		a := r.oc.message("e-2", "hi")
		a.ChannelID = "webchat"
		status, body := r.oc.post(a, tokenOpts{})
		require.Equal(t, http.StatusOK, status, body)
	})
}

// A new key under a new kid is fetched on first sight, with its endorsements.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.oc.mustPost(r.oc.message("rot", "one"))
	r.oc.rotate("oc-key-2")
	r.oc.setEndorsements([]string{"lcw"})
	r.oc.mustPost(r.oc.message("rot", "two"))
	a := r.oc.message("rot", "three")
	a.ChannelID = "omnichannel"
	status, _ := r.oc.post(a, tokenOpts{})
	require.Equal(t, http.StatusUnauthorized, status, "the new key's endorsements apply")
	r.waitTexts("rot", "echo: one", "echo: two")
}

// Malformed bodies get 400 (413 when too large) in the Connector's shape; keys that cannot be
// had give 503, never a pass.
func TestBadBodiesAndNoKeys(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	su := r.oc.serviceURL()
	for _, tc := range []struct {
		name, body, code string
		status           int
	}{
		{"not json", "{", CodeBadSyntax, 400},
		{"no type", `{"conversation":{"id":"x"},"serviceUrl":"` + su + `","channelId":"lcw"}`, CodeMissingProperty, 400},
		{"no conversation", `{"type":"message","serviceUrl":"` + su + `","channelId":"lcw"}`, CodeMissingProperty, 400},
		{"too large", `{"type":"message","text":"` + strings.Repeat("x", maxInboundBytes) + `"}`, CodeMessageSizeTooBig, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := r.oc.postRaw([]byte(tc.body), su, tokenOpts{})
			require.Equal(t, tc.status, status, body)
			var e errorBody
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			require.Equal(t, tc.code, e.Error.Code)
		})
	}

	dead := newRig(t, rigOptions{cfg: func(c *Config) { c.OpenIDMetadataURL = "http://127.0.0.1:1/v1/.well-known/openidconfiguration" }})
	status, body := dead.oc.post(dead.oc.message("nokeys", "hi"), tokenOpts{})
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Empty(t, dead.bot.received())
}

// hs256Token signs a token with HMAC, the public key's modulus as the secret: the algorithm
// confusion attack.
func hs256Token(t *testing.T, oc *fakeOC) string {
	key, kid := oc.signer()
	tk := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": ocIssuer, "aud": testAppID, "serviceurl": oc.serviceURL(), "exp": time.Now().Add(time.Hour).Unix()})
	tk.Header["kid"] = kid
	s, err := tk.SignedString(key.PublicKey.N.Bytes())
	require.NoError(t, err)
	return s
}

// noneToken is an unsigned token.
func noneToken(t *testing.T, oc *fakeOC) string {
	_, kid := oc.signer()
	tk := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": ocIssuer, "aud": testAppID, "serviceurl": oc.serviceURL(), "exp": time.Now().Add(time.Hour).Unix()})
	tk.Header["kid"] = kid
	s, err := tk.SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	return s
}
