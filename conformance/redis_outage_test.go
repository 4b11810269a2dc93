package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

const echoBotScript = `name: Echo
rules:
  - match: '.'
    reply: "echo: {{text}}"
`

// postUntilAccepted posts a message under a clientActivityID until the bridge accepts it, as a
// Direct Line client retries: a 503 must carry Retry-After; any other refusal fails the test.
// It returns how many 503s it saw; after each it calls on503, when set, with the count so far.
func postUntilAccepted(t *testing.T, addr, conv, secret, text, key string, on503 func(int)) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"type": "message", "text": text, "from": map[string]string{"id": "outage-user"},
		"channelData": map[string]string{"clientActivityID": key}})
	client := &http.Client{Timeout: 20 * time.Second}
	unavailable := 0
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v3/directline/conversations/"+conv+"/activities", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return unavailable
		case http.StatusServiceUnavailable:
			unavailable++
			s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			require.NoError(t, err, "a 503 says when to retry")
			require.Positive(t, s)
			if on503 != nil {
				on503(unavailable)
			}
			time.Sleep(200 * time.Millisecond) // a test need not wait the whole Retry-After
		default:
			t.Fatalf("POST %q answered %d", text, resp.StatusCode)
		}
	}
	t.Fatalf("POST %q was never accepted", text)
	return unavailable
}

// A bridge on Redis while Redis is killed and restarted, then stalled (DEBUG SLEEP), mid-run:
// every POST is answered 200, or 503 with Retry-After and then 200 on a retry with the same
// clientActivityID; afterwards each message is in the log exactly once, with exactly one reply,
// and the bridge recovered by itself.
func TestRedisOutageMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	rs := testutil.StartRedis(t)
	script := filepath.Join(t.TempDir(), "echo.yaml")
	require.NoError(t, os.WriteFile(script, []byte(echoBotScript), 0o600))
	const secret = "outage-secret-0123456789abcdef"
	p := &testutil.Bridge{Bin: testutil.BuildBridge(t), Addr: testutil.FreeAddr(t), DataDir: t.TempDir(),
		Env: []string{"BRIDGE_STORE=redis", "BRIDGE_REDIS_URL=redis://" + rs.Addr + "/0", "BRIDGE_DIRECTLINE_SECRET=" + secret,
			"BRIDGE_SANDBOX_BOT_SCRIPT=" + script}}
	p.Start(t)
	conv := dlStart(t, p.Addr, secret)

	const n = 30
	unavailable := 0
	for i := range n {
		var on503 func(int)
		switch i {
		case 8: // Redis killed: the POST is refused until it is back
			rs.Kill()
			on503 = func(seen int) {
				if seen == 3 {
					rs.Start(t)
				}
			}
		case 20: // Redis stalled longer than the client's read timeout
			admin := goredis.NewClient(&goredis.Options{Addr: rs.Addr, ReadTimeout: -1})
			defer admin.Close()
			go func() { _ = admin.Do(context.Background(), "DEBUG", "SLEEP", "4").Err() }()
			time.Sleep(100 * time.Millisecond)
		}
		unavailable += postUntilAccepted(t, p.Addr, conv, secret, fmt.Sprint("m ", i), fmt.Sprint("k", i), on503)
	}
	require.Positive(t, unavailable, "the outage was seen (as 503s)")

	var want []string
	for i := range n {
		want = append(want, fmt.Sprint("m ", i), fmt.Sprint("echo: m ", i))
	}
	require.Eventually(t, func() bool { return len(dlHistory(t, p.Addr, conv, secret)) >= len(want) }, 60*time.Second, 100*time.Millisecond,
		"every reply arrives; the bridge printed:\n%s", p.Output())
	require.NoError(t, settle(context.Background(), func() bool { return len(dlHistory(t, p.Addr, conv, secret)) > len(want) }))
	require.ElementsMatch(t, want, dlHistory(t, p.Addr, conv, secret), "each message once, each with one reply")
	resp, err := http.Get("http://" + p.Addr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// Two bridges on one Redis with inactivity timers; the conversation's instance is SIGKILLed
// right after the customer spoke: the other instance fires the reminder and then the close, once
// each, when they come due.
func TestTimersOfAKilledInstanceFire(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	redisAddr := testutil.RedisServer(t)
	script := filepath.Join(t.TempDir(), "echo.yaml")
	require.NoError(t, os.WriteFile(script, []byte(echoBotScript), 0o600))
	cfgFile := filepath.Join(t.TempDir(), "bridge.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("store: redis\nredis:\n  url: redis://"+redisAddr+"/0\n"+
		"inactivity:\n  remind_after: 3s\n  reminder: still there?\n  close_after: 6s\n  close_text: closed for inactivity\n"), 0o600))
	const secret = "timers-secret-0123456789abcdef"
	bin := testutil.BuildBridge(t)
	var ins []*testutil.Bridge
	for range 2 {
		p := &testutil.Bridge{Bin: bin, Addr: testutil.FreeAddr(t), DataDir: t.TempDir(),
			Args: []string{"--config", cfgFile, "--public-url", "http://bridge.example", "--escalation-target", "none"},
			Env:  []string{"BRIDGE_DIRECTLINE_SECRET=" + secret, "BRIDGE_SANDBOX_BOT_SCRIPT=" + script}}
		p.Start(t)
		ins = append(ins, p)
	}
	a, b := ins[0], ins[1]
	conv := dlStart(t, a.Addr, secret)
	require.Equal(t, http.StatusOK, dlPost(t, a.Addr, conv, secret, "hello"))
	a.Kill(t)

	want := []string{"hello", "echo: hello", "still there?", "closed for inactivity"}
	require.Eventually(t, func() bool { return len(dlHistory(t, b.Addr, conv, secret)) >= len(want) }, 30*time.Second, 100*time.Millisecond,
		"B fires A's timers; B printed:\n%s", b.Output())
	require.NoError(t, settle(context.Background(), func() bool { return len(dlHistory(t, b.Addr, conv, secret)) > len(want) }))
	require.Equal(t, want, dlHistory(t, b.Addr, conv, secret), "the reminder and the close once each")
}
