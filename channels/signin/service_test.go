package signin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

func TestBotMustAuthenticate(t *testing.T) {
	r := newRig(t)
	for _, ep := range []struct{ method, path string }{
		{"GET", "/api/botsignin/GetSignInUrl"}, {"GET", "/api/botsignin/GetSignInResource"},
		{"GET", "/api/usertoken/GetToken"}, {"POST", "/api/usertoken/GetAadTokens"},
		{"DELETE", "/api/usertoken/SignOut"}, {"GET", "/api/usertoken/GetTokenStatus"},
		{"POST", "/api/usertoken/exchange"}, {"GET", "/api/usertoken/GetTokenOrSignInResource"},
	} {
		t.Run(ep.path, func(t *testing.T) {
			status, body, h := r.call(ep.method, ep.path, nil, "", "")
			require.Equal(t, http.StatusUnauthorized, status)
			require.JSONEq(t, `{"error":{"code":"Unauthorized","message":"unauthorized: no token"}}`, body)
			require.NotEmpty(t, h.Get("WWW-Authenticate"))
		})
	}
}

func TestGetSignInURLAndResource(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	link := r.signInLink(testConn, "c1", "u1")
	require.True(t, strings.HasPrefix(link, r.url+SignInPath+"?signin="), link)
	require.NotContains(t, link, `"`, "raw text, not a JSON string")

	status, body, _ := r.call("GET", "/api/botsignin/GetSignInResource", url.Values{"state": {state(testConn, "c1", "u1", testApp)}}, "", testApp)
	require.Equal(t, http.StatusOK, status)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Contains(t, res["signInLink"], r.url+SignInPath+"?signin=")
	require.NotContains(t, res, "tokenExchangeResource", "only connections with a token exchange URL")

	status, body, _ = r.call("GET", "/api/botsignin/GetSignInResource", url.Values{"state": {state(ssoConn, "c1", "u1", testApp)}}, "", testApp)
	require.Equal(t, http.StatusOK, status)
	var sso SignInResource
	require.NoError(t, json.Unmarshal([]byte(body), &sso))
	require.NotNil(t, sso.TokenExchangeResource)
	require.Equal(t, exchURL, sso.TokenExchangeResource.URI)
	require.NotEmpty(t, sso.TokenExchangeResource.ID)
	require.Equal(t, "oidc", sso.TokenExchangeResource.ProviderID)
}

// The legacy adapter and the Emulator write the state in PascalCase (signin.md §1); the Agents
// SDK names the bot "agent" and may send msAppId "".
func TestStatePascalCaseAndAgent(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	pascal := base64.StdEncoding.EncodeToString([]byte(`{"ConnectionName":"idp","MsAppId":"app-1","Conversation":{"User":{"Id":"u1"},"Bot":{"Id":"bot"},"Conversation":{"Id":"c1"},"ChannelId":"directline"}}`))
	agents := base64.StdEncoding.EncodeToString([]byte(`{"connectionName":"idp","msAppId":"","conversation":{"user":{"id":"u1"},"agent":{"id":"bot"},"conversation":{"id":"c1"},"channelId":"directline"}}`))
	for _, st := range []string{pascal, agents} {
		status, body, _ := r.call("GET", "/api/botsignin/GetSignInUrl", url.Values{"state": {st}}, "", testApp)
		require.Equal(t, http.StatusOK, status, body)
	}
}

// A state is bound to the conversation it names: another conversation, user, bot or app is
// refused, and so is a state that is not one.
func TestStateBinding(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	r.start("c2", "u2")
	otherBot := base64.StdEncoding.EncodeToString([]byte(`{"connectionName":"idp","conversation":{"user":{"id":"u1"},"bot":{"id":"someone-else"},"conversation":{"id":"c1"}}}`))
	for _, tc := range []struct {
		name, state, app string
		status           int
	}{
		{"unknown conversation", state(testConn, "nope", "u1", testApp), testApp, http.StatusForbidden},
		{"another conversation's user", state(testConn, "c2", "u1", testApp), testApp, http.StatusForbidden},
		{"another user", state(testConn, "c1", "u2", testApp), testApp, http.StatusForbidden},
		{"another bot's app id", state(testConn, "c1", "u1", otherApp), testApp, http.StatusForbidden},
		{"another bot account", otherBot, testApp, http.StatusForbidden},
		{"unknown connection", state("nope", "c1", "u1", testApp), testApp, http.StatusBadRequest},
		{"not base64", "%%%", testApp, http.StatusBadRequest},
		{"not a state", base64.StdEncoding.EncodeToString([]byte(`[1,2]`)), testApp, http.StatusBadRequest},
		{"missing", "", testApp, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []string{"/api/botsignin/GetSignInUrl", "/api/botsignin/GetSignInResource"} {
				status, body, _ := r.call("GET", p, url.Values{"state": {tc.state}}, "", tc.app)
				require.Equal(t, tc.status, status, body)
				var e struct {
					Error struct{ Code, Message string }
				}
				require.NoError(t, json.Unmarshal([]byte(body), &e), body)
				require.NotEmpty(t, e.Error.Code)
				require.NotContains(t, body, "signin?")
			}
		})
	}
}

// "No token" is a 404 with an EMPTY body (signin.md §1 "Quirks").
func TestGetTokenNone(t *testing.T) {
	r := newRig(t)
	status, body := r.getToken(testApp, testConn, "u1", "")
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, body)
	status, body = r.getToken(testApp, testConn, "u1", "123456")
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, body)
	status, body, _ = r.call("GET", "/api/usertoken/GetToken", url.Values{"connectionName": {testConn}}, "", testApp)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "userId is required")
	status, body = r.getToken(testApp, "nope", "u1", "")
	require.Equal(t, http.StatusBadRequest, status, body)
}

// The link, the provider's login and the magic code; GetToken with the code releases the
// token once; SignOut (200) then GetToken: none.
func TestMagicCodeSignIn(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	code := r.magicCode(testConn, "c1", "u1")

	status, body := r.getToken(testApp, testConn, "u1", "")
	require.Equal(t, http.StatusNotFound, status, "no token before the code is typed")
	require.Empty(t, body)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	status, _ = r.getToken(testApp, testConn, "u1", wrong)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = r.getToken(otherApp, testConn, "u1", code)
	require.Equal(t, http.StatusNotFound, status, "another bot cannot redeem the code")
	status, _ = r.getToken(testApp, testConn, "u2", code)
	require.Equal(t, http.StatusNotFound, status, "another user cannot redeem the code")

	status, body = r.getToken(testApp, testConn, "u1", code)
	require.Equal(t, http.StatusOK, status, body)
	var tr TokenResponse
	require.NoError(t, json.Unmarshal([]byte(body), &tr))
	require.True(t, strings.HasPrefix(tr.Token, "access-alice-"), tr.Token)
	require.Equal(t, testConn, tr.ConnectionName)
	require.Equal(t, "directline", tr.ChannelID)
	_, err := time.Parse(time.RFC3339, tr.Expiration)
	require.NoError(t, err)

	status, body = r.getToken(testApp, testConn, "u1", "")
	require.Equal(t, http.StatusOK, status, "the token is kept")
	require.Contains(t, body, tr.Token)

	status, body, _ = r.call("DELETE", "/api/usertoken/SignOut", url.Values{"userId": {"u1"}, "connectionName": {testConn}, "channelId": {"directline"}}, "", testApp)
	require.Equal(t, http.StatusOK, status, body)
	status, body = r.getToken(testApp, testConn, "u1", "")
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, body)
	status, _ = r.getToken(testApp, testConn, "u1", code)
	require.Equal(t, http.StatusNotFound, status, "a code works once")
}

// A magic code from another conversation is refused: it releases only the token of the
// conversation's own user.
func TestMagicCodeOfAnotherConversation(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	r.start("c2", "u2")
	code := r.magicCode(testConn, "c1", "u1")
	status, body := r.getToken(testApp, testConn, "u2", code)
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, body)
	status, _ = r.getToken(testApp, testConn, "u1", code)
	require.Equal(t, http.StatusOK, status)
}

func TestMagicCodeExpires(t *testing.T) {
	r := newRig(t)
	now := time.Now()
	r.svc.cfg.Now = func() time.Time { return now }
	r.start("c1", "u1")
	code := r.magicCode(testConn, "c1", "u1")
	now = now.Add(6 * time.Minute)
	status, _ := r.getToken(testApp, testConn, "u1", code)
	require.Equal(t, http.StatusNotFound, status)
}

func TestSignInLinkIsSingleUseAndExpires(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	link := r.signInLink(testConn, "c1", "u1")
	status, _ := r.follow(link)
	require.Equal(t, http.StatusOK, status)
	status, page := r.follow(link)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, page, "expired or was already used")

	now := time.Now()
	r.svc.cfg.Now = func() time.Time { return now }
	link = r.signInLink(testConn, "c1", "u1")
	now = now.Add(16 * time.Minute)
	status, _ = r.follow(link)
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = r.follow(r.url + SignInPath + "?signin=forged")
	require.Equal(t, http.StatusBadRequest, status)
}

// The browser proves it is the customer's (the Direct Line session cookie, the code_challenge
// Web Chat appends, the id the conversation was given): the bot gets tokens/response, the page
// says so, no code is shown.
func TestChannelCompletedSignIn(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.start("c1", "u1")
	require.NoError(t, r.hub.PutValue(ctx, "c1", SessionValue, []byte("sess-1")))
	link := r.signInLink(testConn, "c1", "u1")
	cookie := &http.Cookie{Name: SessionCookie, Value: "sess-1"}

	status, page := r.follow(link+url.QueryEscape("&code_challenge=sess-1"), cookie) // as Web Chat appends it
	require.Equal(t, http.StatusOK, status, page)
	require.Contains(t, page, "You are now signed in and can close this window.")
	require.NotRegexp(t, codeRE, page)

	var ev *activity.Activity
	require.Eventually(t, func() bool {
		for _, a := range r.bot.sent() {
			if a.Type == activity.TypeEvent && a.Name == TokensResponse {
				ev = a
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "u1", ev.From.ID)
	require.Equal(t, "c1", ev.RelatesTo.Conversation.ID)
	require.Contains(t, string(ev.Value), sealedPrefix, "the log holds the token sealed")
	require.NoError(t, r.svc.ToBot(ctx, "c1", ev))
	var v tokensResponseValue
	require.NoError(t, json.Unmarshal(ev.Value, &v))
	require.True(t, strings.HasPrefix(v.Token, "access-alice-"), v.Token)
	require.Equal(t, testConn, v.ConnectionName)
	require.Empty(t, r.cust.sent(), "the customer's channel never gets the event")
	require.False(t, bridge.CustomerVisible(ev))

	status, body := r.getToken(testApp, testConn, "u1", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, v.Token)
}

// Without the cookie, or with a challenge that is not the conversation's session, the sign-in
// falls back to the magic code: nothing is sent to the bot.
func TestChannelCompletionNeedsTheSameBrowser(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.start("c1", "u1")
	require.NoError(t, r.hub.PutValue(ctx, "c1", SessionValue, []byte("sess-1")))
	for _, tc := range []struct {
		name, challenge string
		cookie          *http.Cookie
	}{
		{"no cookie", "sess-1", nil},
		{"another cookie", "sess-1", &http.Cookie{Name: SessionCookie, Value: "sess-2"}},
		{"another conversation's session", "sess-2", &http.Cookie{Name: SessionCookie, Value: "sess-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cookies []*http.Cookie
			if tc.cookie != nil {
				cookies = append(cookies, tc.cookie)
			}
			status, page := r.follow(r.signInLink(testConn, "c1", "u1")+"&code_challenge="+tc.challenge, cookies...)
			require.Equal(t, http.StatusOK, status)
			require.Regexp(t, codeRE, page)
		})
	}
	for _, a := range r.bot.sent() {
		require.NotEqual(t, TokensResponse, a.Name)
	}
}

func TestRefresh(t *testing.T) {
	r := newRig(t)
	r.idp.ttl = 30 * time.Second // within the minute before expiry: refreshed on the next read
	r.start("c1", "u1")
	code := r.magicCode(testConn, "c1", "u1")
	status, body := r.getToken(testApp, testConn, "u1", code)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "access-alice-refreshed")
	require.Equal(t, 1, r.idp.refresh)
}

func TestGetTokenStatus(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	code := r.magicCode(testConn, "c1", "u1")
	status, _ := r.getToken(testApp, testConn, "u1", code)
	require.Equal(t, http.StatusOK, status)
	status, body, _ := r.call("GET", "/api/usertoken/GetTokenStatus", url.Values{"userId": {"u1"}, "channelId": {"directline"}}, "", testApp)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `[
		{"channelId":"directline","connectionName":"idp","hasToken":true,"serviceProviderDisplayName":"idp"},
		{"channelId":"directline","connectionName":"sso","hasToken":false,"serviceProviderDisplayName":"sso"},
		{"channelId":"directline","connectionName":"entra","hasToken":false,"serviceProviderDisplayName":"entra"}]`, body)
	status, body, _ = r.call("GET", "/api/usertoken/GetTokenStatus", url.Values{"userId": {"u1"}, "channelId": {"directline"}, "include": {"sso"}}, "", testApp)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `[{"channelId":"directline","connectionName":"sso","hasToken":false,"serviceProviderDisplayName":"sso"}]`, body)
}

func TestGetTokenOrSignInResource(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	q := url.Values{"userId": {"u1"}, "connectionName": {testConn}, "channelId": {"directline"}, "state": {state(testConn, "c1", "u1", testApp)}}
	status, body, _ := r.call("GET", "/api/usertoken/GetTokenOrSignInResource", q, "", testApp)
	require.Equal(t, http.StatusOK, status, body)
	var out tokenOrSignIn
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	require.Nil(t, out.TokenResponse)
	require.NotNil(t, out.SignInResource)

	status, page := r.follow(out.SignInResource.SignInLink)
	require.Equal(t, http.StatusOK, status)
	q.Set("code", codeRE.FindStringSubmatch(page)[1])
	status, body, _ = r.call("GET", "/api/usertoken/GetTokenOrSignInResource", q, "", testApp)
	require.Equal(t, http.StatusOK, status, body)
	out = tokenOrSignIn{}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	require.NotNil(t, out.TokenResponse)
	require.Nil(t, out.SignInResource)
	require.Contains(t, out.TokenResponse.Token, "access-alice-")
}

// The bot's OAuthCard with an empty signin button gets the conversation's link (§2a, §6.3);
// other cards and filled buttons pass unchanged.
func TestFromBotFillsTheCard(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.start("c1", "u1")
	link := r.signInLink(testConn, "c1", "u1")
	card := `{"text":"Please sign in","connectionName":"idp","buttons":[{"type":"signin","title":"Sign in"}],"extra":1}`
	a := &activity.Activity{Type: activity.TypeMessage, Attachments: []activity.Attachment{{ContentType: OAuthCardType, Content: json.RawMessage(card)}}}
	require.NoError(t, r.svc.FromBot(ctx, "c1", a))
	var got map[string]any
	require.NoError(t, json.Unmarshal(a.Attachments[0].Content, &got))
	require.Equal(t, link, got["buttons"].([]any)[0].(map[string]any)["value"])
	require.EqualValues(t, 1, got["extra"], "other members are kept")

	filled := `{"connectionName":"idp","buttons":[{"type":"signin","title":"Sign in","value":"https://elsewhere/x"}]}`
	b := &activity.Activity{Type: activity.TypeMessage, Attachments: []activity.Attachment{{ContentType: OAuthCardType, Content: json.RawMessage(filled)}}}
	require.NoError(t, r.svc.FromBot(ctx, "c1", b))
	require.JSONEq(t, filled, string(b.Attachments[0].Content))

	none := `{"connectionName":"idp","buttons":[{"type":"signin","title":"Sign in"}]}`
	c := &activity.Activity{Type: activity.TypeMessage, Attachments: []activity.Attachment{{ContentType: OAuthCardType, Content: json.RawMessage(none)}}}
	r.start("c2", "u2")
	require.NoError(t, r.svc.FromBot(ctx, "c2", c))
	require.JSONEq(t, none, string(c.Attachments[0].Content), "no link of c1 in c2's card")
}

// Tokens at rest are sealed: no value of the store holds the token, nor does the log.
func TestTokensSealedAtRestAndNeverLogged(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.start("c1", "u1")
	code := r.magicCode(testConn, "c1", "u1")
	status, body := r.getToken(testApp, testConn, "u1", code)
	require.Equal(t, http.StatusOK, status)
	var tr TokenResponse
	require.NoError(t, json.Unmarshal([]byte(body), &tr))
	vals, err := r.hub.Values(ctx, keyToken+ownerKey(testApp, "directline", "u1", testConn))
	require.NoError(t, err)
	require.Len(t, vals, 1)
	for _, v := range vals {
		require.NotContains(t, string(v), tr.Token)
		require.NotContains(t, string(v), "refresh-alice")
	}
	require.NotContains(t, r.logs.String(), tr.Token)
	require.NotContains(t, r.logs.String(), "refresh-alice")
	require.NotContains(t, r.logs.String(), clientPass)
	require.NotContains(t, r.logs.String(), code)
}

// Erasing the conversation erases the user's tokens with it.
func TestEraseTakesTheTokens(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.start("c1", "u1")
	code := r.magicCode(testConn, "c1", "u1")
	status, _ := r.getToken(testApp, testConn, "u1", code)
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, r.store.EraseConversation(ctx, "c1"))
	status, body := r.getToken(testApp, testConn, "u1", "")
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, body)
}

// A second sign-in with the same Web Chat session is channel-completed too, and a plain
// code_challenge parameter works as well as Web Chat's escaped one.
func TestChannelCompletedPlainChallenge(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	require.NoError(t, r.hub.PutValue(context.Background(), "c1", SessionValue, []byte("sess-1")))
	status, page := r.follow(r.signInLink(testConn, "c1", "u1")+"&code_challenge=sess-1", &http.Cookie{Name: SessionCookie, Value: "sess-1"})
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, page, textDone)
}

// Required parameters missing: 400 BadArgument in the ErrorResponse shape, on every endpoint.
func TestRequiredParameters(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		method, path string
		q            url.Values
		missing      string
	}{
		{"GET", "/api/botsignin/GetSignInUrl", nil, "state"},
		{"GET", "/api/usertoken/GetToken", url.Values{"userId": {"u1"}}, "connectionName"},
		{"POST", "/api/usertoken/GetAadTokens", url.Values{"connectionName": {"entra"}}, "userId"},
		{"DELETE", "/api/usertoken/SignOut", nil, "userId"},
		{"GET", "/api/usertoken/GetTokenStatus", nil, "userId"},
		{"POST", "/api/usertoken/exchange", url.Values{"userId": {"u1"}, "connectionName": {"sso"}}, "channelId"},
		{"GET", "/api/usertoken/GetTokenOrSignInResource", url.Values{"userId": {"u1"}, "connectionName": {"idp"}}, "state"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			status, body, _ := r.call(tc.method, tc.path, tc.q, "", testApp)
			require.Equal(t, http.StatusBadRequest, status)
			require.JSONEq(t, `{"error":{"code":"BadArgument","message":"`+tc.missing+` is required"}}`, body)
		})
	}
	status, body, _ := r.call("GET", "/api/usertoken/GetToken", url.Values{"userId": {strings.Repeat("x", 2000)}, "connectionName": {"idp"}}, "", testApp)
	require.Equal(t, http.StatusBadRequest, status, "an over-long parameter: %s", body)
}

// SignOut without a connection name signs the user out of every connection.
func TestSignOutOfEveryConnection(t *testing.T) {
	r := newRig(t)
	r.start("c1", "u1")
	for _, conn := range []string{testConn, ssoConn} {
		code := r.magicCode(conn, "c1", "u1")
		status, _ := r.getToken(testApp, conn, "u1", code)
		require.Equal(t, http.StatusOK, status)
	}
	status, _, _ := r.call("DELETE", "/api/usertoken/SignOut", url.Values{"userId": {"u1"}, "channelId": {"directline"}}, "", testApp)
	require.Equal(t, http.StatusOK, status)
	for _, conn := range []string{testConn, ssoConn} {
		status, body := r.getToken(testApp, conn, "u1", "")
		require.Equal(t, http.StatusNotFound, status)
		require.Empty(t, body)
	}
}

// Once the conversation left the bot (an agent has it), the token service sends no
// tokens/response (the Hub would hand it to the agent): the customer gets a code instead.
func TestNoTokensResponseOnceEscalated(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.start("c1", "u1")
	require.NoError(t, r.hub.PutValue(ctx, "c1", SessionValue, []byte("sess-1")))
	link := r.signInLink(testConn, "c1", "u1")
	_, err := r.hub.Update(ctx, "c1", func(c *bridge.Conversation) error {
		c.State = bridge.StateAgent
		c.Agent = &bridge.Leg{Channel: "dl", ConversationID: "agent-1"}
		return nil
	})
	require.NoError(t, err)
	status, page := r.follow(link+"&code_challenge=sess-1", &http.Cookie{Name: SessionCookie, Value: "sess-1"})
	require.Equal(t, http.StatusOK, status)
	require.Regexp(t, codeRE, page)
	for _, a := range append(r.bot.sent(), r.cust.sent()...) {
		require.NotEqual(t, TokensResponse, a.Name)
	}
}
