package directline

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestVerifiedTokensStillExpire checks the cache of verified tokens: a token checked once is
// refused with TokenExpired once its expiry passes, a token altered by one character is not
// taken for the cached one, and the cache stays bounded.
func TestVerifiedTokensStillExpire(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tok := newTokens(testSecret, "http://x/v3/directline", time.Minute, clock)
	token, err := tok.issue("conv1", "u1", nil, false)
	require.NoError(t, err)

	p, e := tok.authenticate(token)
	require.Nil(t, e)
	require.Equal(t, "conv1", p.conv)
	p, e = tok.authenticate(token) // from the cache
	require.Nil(t, e)
	require.Equal(t, "u1", p.user)

	tampered := token[:len(token)-2] + map[bool]string{true: "A", false: "B"}[token[len(token)-2] != 'A'] + token[len(token)-1:]
	_, e = tok.authenticate(tampered)
	require.NotNil(t, e)
	require.Equal(t, http.StatusUnauthorized, e.Status)

	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	_, e = tok.authenticate(token)
	require.NotNil(t, e)
	require.Equal(t, http.StatusForbidden, e.Status)
	require.Equal(t, CodeTokenExpired, e.Code)

	mu.Lock()
	now = time.Now()
	mu.Unlock()
	tok.maxVerified = 64
	for range 100 {
		tk, err := tok.issue("c", "", nil, false)
		require.NoError(t, err)
		_, e := tok.authenticate(tk)
		require.Nil(t, e)
	}
	require.LessOrEqual(t, len(tok.verified), 64)
}

// TestAppendSet checks the hand-written ActivitySet encoding against encoding/json's.
func TestAppendSet(t *testing.T) {
	for _, set := range []activitySet{
		{Activities: []json.RawMessage{}},
		{Activities: []json.RawMessage{[]byte(`{"type":"message","text":"a\"b"}`)}, Watermark: "0"},
		{Activities: []json.RawMessage{[]byte(`{"id":"c|0000001"}`), []byte(`{"x": [1, 2]}`)}, Watermark: "12"},
	} {
		want, err := json.Marshal(set)
		require.NoError(t, err)
		got := appendSet(nil, set)
		require.True(t, json.Valid(got), "%s", got)
		require.JSONEq(t, string(want), string(got))
	}
}
