package signin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	redisstore "github.com/bfbridge/bfbridge/bridge/store/redis"
	"github.com/bfbridge/bfbridge/internal/atrest"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// Two bridge instances on one Redis behind one public URL, each request to the other instance
// in turn: the link minted by one, the provider's redirect served by the other, the code
// redeemed by either. Nothing of a sign-in lives in a process.
func TestSignInAcrossInstances(t *testing.T) {
	addr := testutil.RedisServer(t)
	idp := newFakeIdP(t, clientID, clientPass)
	key, err := atrest.NewKey()
	require.NoError(t, err)
	var turn atomic.Int64
	var muxes [2]*http.ServeMux
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		muxes[turn.Add(1)%2].ServeHTTP(w, r) // a round-robin load balancer
	}))
	t.Cleanup(front.Close)
	var hubs [2]*bridge.Hub
	for i := range muxes {
		rdb := goredis.NewClient(&goredis.Options{Addr: addr})
		t.Cleanup(func() { _ = rdb.Close() })
		store, err := redisstore.Open(context.Background(), redisstore.Options{Client: rdb, Prefix: "signin:"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = store.Close() })
		hubs[i] = bridge.NewHub(store, bridge.HubConfig{}, zerolog.Nop())
		t.Cleanup(hubs[i].Close)
		hubs[i].Register(&recorder{name: "botframework"})
		hubs[i].Register(&recorder{name: "dl"})
		sec := Section{Connections: []Connection{{Name: testConn, Provider: "oidc", Issuer: idp.issuer(), ClientID: clientID, ClientSecretEnv: "X"}}}
		svc, err := New(Config{Section: sec.withDefaults(func(string) string { return clientPass }), PublicURL: front.URL,
			BotChannel: "botframework", Auth: testAuth, Key: key}, hubs[i], zerolog.Nop())
		require.NoError(t, err)
		muxes[i] = http.NewServeMux()
		svc.Register(muxes[i])
	}
	_, _, err = hubs[0].Start(context.Background(), "c1", bridge.Leg{Channel: "dl", ConversationID: "c1", User: activity.ChannelAccount{ID: "u1"}})
	require.NoError(t, err)

	r := &rig{t: t, url: front.URL}
	for round := 0; round < 2; round++ { // both parities of the round robin
		code := r.magicCode(testConn, "c1", "u1")
		status, body := r.getToken(testApp, testConn, "u1", code)
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, "access-alice-")
		status, _ = r.getToken(testApp, testConn, "u1", "")
		require.Equal(t, http.StatusOK, status, "the other instance reads the token")
		status, _, _ = r.call("DELETE", "/api/usertoken/SignOut", url.Values{"userId": {"u1"}, "channelId": {"directline"}}, "", testApp)
		require.Equal(t, http.StatusOK, status)
		status, _ = r.getToken(testApp, testConn, "u1", "")
		require.Equal(t, http.StatusNotFound, status)
		turn.Add(1)
	}
}
