package directline

import (
	"crypto/sha256"
	"net/http"
	"net/url"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// The stream URL takes tokens only: URLs end up in logs and browser histories, so the master
// secret is refused as ?t= (it is still taken in the Authorization header).
func TestStreamURLRefusesTheSecret(t *testing.T) {
	f := newFixture(t, nil)
	c := f.start(t)
	u, err := url.Parse(c.StreamURL)
	require.NoError(t, err)
	q := u.Query()
	q.Set("t", testSecret)
	u.RawQuery = q.Encode()
	conn, resp, err := websocket.DefaultDialer.Dial(u.String(), nil)
	if conn != nil {
		conn.Close()
	}
	require.Error(t, err, "the secret opened a stream from the URL")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	q.Del("t")
	u.RawQuery = q.Encode()
	conn, _, err = websocket.DefaultDialer.Dial(u.String(), http.Header{"Authorization": {"Bearer " + testSecret}})
	require.NoError(t, err, "the secret in the header still opens a stream")
	conn.Close()
}

// The secret is compared through fixed-length hashes: what it is compared with tells nothing of
// its length. Near misses (a prefix, an extension, one byte off) are refused.
func TestSecretComparison(t *testing.T) {
	tok := newTokens(testSecret, "http://x/v3/directline", 0, nil)
	p, e := tok.authenticate(testSecret)
	require.Nil(t, e)
	require.True(t, p.secret)
	for _, cred := range []string{testSecret[:len(testSecret)-1], testSecret + "x", "X" + testSecret[1:]} {
		p, e := tok.authenticate(cred)
		require.NotNil(t, e, cred)
		require.False(t, p.secret)
	}
	require.Len(t, tok.secretSum, sha256.Size, "only the secret's SHA-256 is kept and compared")
}
