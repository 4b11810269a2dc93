package load

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://127.3.2.1", "ws://localhost:1/x", "http://[::1]:80"} {
		require.NoError(t, CheckLoopbackURL(ok), ok)
	}
	for _, bad := range []string{"http://10.0.0.1", "http://example.com", "https://127.0.0.1", "http://0.0.0.0:80", "http://[::]:1", "127.0.0.1:80", "http://128.0.0.1"} {
		require.Error(t, CheckLoopbackURL(bad), bad)
	}
	o := Defaults()
	o.Runs = []Spec{{Target: TargetURL}}
	o.URL, o.Kind, o.Secret = "http://192.168.1.10:8080", KindDirectLine, "s"
	require.ErrorContains(t, o.Validate(), "not a loopback address")

	d := newSourceDialer(4)
	_, err := d.DialContext(t.Context(), "tcp", "93.184.216.34:80")
	require.ErrorContains(t, err, "not a loopback address")
}

func TestOptionsBounds(t *testing.T) {
	o := Defaults()
	require.NoError(t, o.Validate())
	require.Equal(t, 2*time.Second, o.Warmup)

	o = Defaults()
	o.Duration = MaxDuration + time.Second
	require.ErrorContains(t, o.Validate(), "duration")

	o = Defaults()
	o.Conversations = MaxConversations + 1
	require.ErrorContains(t, o.Validate(), "conversations")

	o = Defaults()
	o.Phases = []string{"fast"}
	require.ErrorContains(t, o.Validate(), "phase")
}

func TestParseSpecs(t *testing.T) {
	specs, err := ParseSpecs("relay, bridge-sqlite ,bridge-memory:poll:http,offline-directline,bridge-redis::inproc:3")
	require.NoError(t, err)
	require.Equal(t, []Spec{
		{TargetRelay, ModeWebsocket, BotNone, 0},
		{TargetBridgeSQLite, ModeWebsocket, BotInProcess, 0},
		{TargetBridgeMemory, ModePoll, BotHTTP, 0},
		{TargetOfflineDirectLine, ModePoll, BotHTTP, 0},
		{TargetBridgeRedis, ModeWebsocket, BotInProcess, 3},
	}, specs)
	require.Equal(t, "bridge-redis:ws:inproc:3", specs[4].String())
	for _, bad := range []string{"", "nginx", "offline-directline:ws", "relay:poll", "bridge-memory:ws:human", "a:b:c:d",
		"bridge-sqlite:ws:inproc:2", "bridge-redis:ws:inproc:9", "bridge-redis:ws:inproc:zero", "a:b:c:d:e"} {
		_, err := ParseSpecs(bad)
		require.Error(t, err, bad)
	}
}
