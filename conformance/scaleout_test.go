package conformance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestScaleOutInstanceKilledWithDeliveriesPending: two bridge processes on one Redis, with no
// Direct Line secret configured (they share the one the first generated). The customer talks
// through both; the bot's endpoint goes down while instance A delivers, so A's pump holds the
// bot leg's lease, retrying; A is killed (SIGKILL) with those deliveries pending; the bot comes
// back, and the customer's next POST through B waits for A's lease to run out, takes the leg over
// and delivers everything pending: the bot gets every activity exactly once, in order, under
// the log's ids.
func TestScaleOutInstanceKilledWithDeliveriesPending(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	redisAddr := testutil.RedisServer(t)
	bot := &recordingBot{addr: testutil.FreeAddr(t)}
	bot.up(t)
	cfgFile := filepath.Join(t.TempDir(), "bridge.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("store: redis\nredis:\n  url: redis://"+redisAddr+"/0\n"), 0o600))
	bin := testutil.BuildBridge(t)
	instance := func() *testutil.Bridge {
		p := &testutil.Bridge{Bin: bin, Addr: testutil.FreeAddr(t), DataDir: t.TempDir(), // machines of their own
			Args: []string{"--config", cfgFile, "--bot-endpoint", "http://" + bot.addr + "/api/messages", "--escalation-target", "none"}}
		p.Start(t)
		return p
	}
	a, b := instance(), instance()

	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = rdb.Close() })
	secret, err := rdb.HGet(context.Background(), "bfbridge:values", "directline-secret").Result()
	require.NoError(t, err, "the generated secret is shared through Redis")

	conv := dlStart(t, a.Addr, secret)
	var want []string
	post := func(p *testutil.Bridge, text string, status int) {
		t.Helper()
		require.Equal(t, status, dlPost(t, p.Addr, conv, secret, text), "POST %q", text)
		want = append(want, text)
	}
	post(a, "a0", http.StatusOK)
	post(b, "b0", http.StatusOK)
	texts, _ := bot.messages()
	require.Equal(t, want, texts)

	bot.down()
	post(a, "a1 while the bot is down", http.StatusBadGateway)
	post(a, "a2 while the bot is down", http.StatusBadGateway)
	require.Equal(t, want, dlHistory(t, b.Addr, conv, secret), "B reads what A appended")
	a.Kill(t)
	killed := time.Now()

	bot.up(t)
	post(b, "b1 after A died", http.StatusOK)
	took := time.Since(killed)
	require.Eventually(t, func() bool { texts, _ := bot.messages(); return len(texts) >= len(want) }, 30*time.Second, 20*time.Millisecond,
		"B delivers what A left pending")
	require.NoError(t, settle(context.Background(), func() bool { texts, _ := bot.messages(); return len(texts) > len(want) }))
	texts, ids := bot.messages()
	require.Equal(t, want, texts, "each exactly once, in order")
	for i, id := range ids {
		require.Equal(t, fmt.Sprintf("%s|%07d", conv, i), id, "under the log's id")
	}
	t.Logf("B took the bot leg over %s after A was killed", took)
}
