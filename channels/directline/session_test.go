package directline

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// getsessionid (reference/signin.md §2b): with a conversation's token the answer is the
// conversation's session id, the same on every call, kept in the store, and set as the
// webchat_session_v2 cookie (HttpOnly); a caller from another origin may read it with
// credentials. With the secret the id is bound to nothing; without credentials, refused.
func TestGetSessionID(t *testing.T) {
	f := newFixture(t, nil)
	c := f.start(t)
	var first, again struct{ SessionID string }
	resp := f.call(t, "GET", sessionPath, c.Token, nil, &first)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, first.SessionID)
	var ck *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == SessionCookie {
			ck = k
		}
	}
	require.NotNil(t, ck, "the session cookie is set")
	require.Equal(t, first.SessionID, ck.Value)
	require.True(t, ck.HttpOnly)
	require.Equal(t, "/", ck.Path)
	require.Equal(t, http.StatusOK, f.call(t, "GET", sessionPath, c.Token, nil, &again).StatusCode)
	require.Equal(t, first.SessionID, again.SessionID, "one session id per conversation")
	stored, err := f.hub.Value(context.Background(), c.ConversationID, SessionValue)
	require.NoError(t, err)
	require.Equal(t, first.SessionID, string(stored))

	other := f.start(t)
	var second struct{ SessionID string }
	require.Equal(t, http.StatusOK, f.call(t, "GET", sessionPath, other.Token, nil, &second).StatusCode)
	require.NotEqual(t, first.SessionID, second.SessionID)

	var bySecret struct{ SessionID string }
	require.Equal(t, http.StatusOK, f.call(t, "GET", sessionPath, testSecret, nil, &bySecret).StatusCode)
	require.NotEmpty(t, bySecret.SessionID)

	resp = f.call(t, "GET", sessionPath, "", nil, nil)
	require.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, resp.StatusCode)

	req, _ := http.NewRequest("GET", f.url+sessionPath, nil)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Origin", "https://shop.example")
	r2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r2.Body.Close()
	require.Equal(t, "https://shop.example", r2.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "true", r2.Header.Get("Access-Control-Allow-Credentials"))
}
