package signin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// exchange posts the client's token (or a uri) as OAuthPrompt does for a signin/tokenExchange
// invoke (signin.md §1, §2c).
func (r *rig) exchange(conn, user, body string) (int, string) {
	q := url.Values{"userId": {user}, "connectionName": {conn}, "channelId": {"directline"}}
	status, b, _ := r.call("POST", "/api/usertoken/exchange", q, body, testApp)
	return status, b
}

// askSignIn makes the bot ask user to sign in in conv (the card the SSO client intercepts).
func (r *rig) askSignIn(conn, conv, user string) {
	r.t.Helper()
	status, body, _ := r.call("GET", "/api/botsignin/GetSignInResource", url.Values{"state": {state(conn, conv, user, testApp)}}, "", testApp)
	require.Equal(r.t, http.StatusOK, status, body)
}

// The client's token is checked (issuer's keys, issuer, audience = token_exchange_url,
// expiry); without on-behalf-of it becomes the user's token as it is.
func TestExchangeToken(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	r.askSignIn(ssoConn, "c1", "u1")
	good := r.idp.sign(exchURL, "alice", time.Hour)
	status, body := r.exchange(ssoConn, "u1", `{"token":"`+good+`"}`)
	require.Equal(t, http.StatusOK, status, body)
	var tr TokenResponse
	require.NoError(t, json.Unmarshal([]byte(body), &tr))
	require.Equal(t, good, tr.Token)
	require.Equal(t, ssoConn, tr.ConnectionName)
	status, body = r.getToken(testApp, ssoConn, "u1", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, good)
}

func TestExchangeRefused(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	r.askSignIn(ssoConn, "c1", "u1")
	other := newFakeIdP(t, clientID, clientPass)
	for _, tc := range []struct{ name, body string }{
		{"wrong audience", `{"token":"` + r.idp.sign("api://someone-else", "alice", time.Hour) + `"}`},
		{"expired", `{"token":"` + r.idp.sign(exchURL, "alice", -time.Hour) + `"}`},
		{"another issuer's key", `{"token":"` + other.sign(exchURL, "alice", time.Hour) + `"}`},
		{"not a JWT", `{"token":"abc"}`},
		{"neither token nor uri", `{}`},
		{"not JSON", `nope`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := r.exchange(ssoConn, "u1", tc.body)
			require.Equal(t, http.StatusBadRequest, status, body)
			require.NotContains(t, body, `"token"`)
			var e struct{ Error struct{ Code string } }
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			require.Equal(t, "BadArgument", e.Error.Code)
		})
	}
	status, body := r.exchange(testConn, "u1", `{"token":"`+r.idp.sign(exchURL, "alice", time.Hour)+`"}`)
	require.Equal(t, http.StatusBadRequest, status, "a connection without a token exchange URL: %s", body)
	status, body = r.getToken(testApp, ssoConn, "u1", "")
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, body)
}

// No conversation asked this user to sign in: 404, nothing kept.
func TestExchangeWithoutAsking(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	status, body := r.exchange(ssoConn, "u1", `{"token":"`+r.idp.sign(exchURL, "alice", time.Hour)+`"}`)
	require.Equal(t, http.StatusNotFound, status, body)
	require.NotContains(t, body, `"token"`)
}

// Entra ID connections exchange the client's token on behalf of the user at the token endpoint
// with the OBO request shape (signin.md §3 last bullet); {uri} exchanges the stored token for a
// resource (skills).
func TestExchangeOnBehalfOf(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	r.askSignIn(oboConn, "c1", "u1")
	assertion := r.idp.sign(exchURL, "alice", time.Hour)
	status, body := r.exchange(oboConn, "u1", `{"token":"`+assertion+`"}`)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"token":"obo-for-https://graph.example/.default"`)
	require.Len(t, r.idp.obo, 1)
	f := r.idp.obo[0]
	require.Equal(t, "urn:ietf:params:oauth:grant-type:jwt-bearer", f.Get("grant_type"))
	require.Equal(t, assertion, f.Get("assertion"))
	require.Equal(t, "on_behalf_of", f.Get("requested_token_use"))
	require.Equal(t, clientID, f.Get("client_id"))
	require.Equal(t, clientPass, f.Get("client_secret"))

	status, body = r.exchange(oboConn, "u1", `{"uri":"https://skill.example"}`)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"token":"obo-for-https://skill.example/.default"`)
	require.Equal(t, "obo-for-https://graph.example/.default", r.idp.obo[1].Get("assertion"))

	q := url.Values{"userId": {"u1"}, "connectionName": {oboConn}, "channelId": {"directline"}}
	status, body, _ = r.call("POST", "/api/usertoken/GetAadTokens", q, `{"resourceUrls":["https://a.example"]}`, testApp)
	require.Equal(t, http.StatusOK, status, body)
	var m map[string]TokenResponse
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	require.Equal(t, "obo-for-https://a.example/.default", m["https://a.example"].Token)

	q.Set("connectionName", testConn)
	status, _, _ = r.call("POST", "/api/usertoken/GetAadTokens", q, `{"resourceUrls":["https://a.example"]}`, testApp)
	require.Equal(t, http.StatusBadRequest, status, "GetAadTokens applies to Entra ID connections")
	status, body = r.exchange(testConn, "u1", `{"uri":"https://skill.example"}`)
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, body)
}
