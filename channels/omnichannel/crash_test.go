package omnichannel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// echoBot is a self-hosted bot (botframework.md §1, §2): it takes the bridge's POST to its
// messaging endpoint (anonymous: no app id) with 200, then replies "echo: <text>" through the
// Connector at the activity's serviceUrl (ReplyToActivity), as a botbuilder bot sending from a
// background task does. It records the Connector's answers.
type echoBot struct {
	t       testing.TB
	srv     *http.Server
	wg      sync.WaitGroup
	mu      sync.Mutex
	got     []string // texts of the messages it was sent
	replied []string // texts of the replies the Connector took (200 or 201)
	seen    map[string]bool
}

func newEchoBot(t testing.TB) (*echoBot, string) {
	b := &echoBot{t: t}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close(); b.wg.Wait() })
	return b, "http://" + ln.Addr().String() + "/api/messages"
}

func (b *echoBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	a, err := activity.Decode(raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	if a.Type != activity.TypeMessage {
		return
	}
	b.mu.Lock()
	// Delivery to a bot is at least once: a message whose delivery the bridge had not yet
	// acknowledged when it was killed comes again under the same id after the restart. The bot
	// answers each id once, as a bot on such a channel should (the sandbox bot does too).
	again := b.seen[a.ID]
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	b.seen[a.ID] = true
	if !again {
		b.got = append(b.got, a.Text)
	}
	b.mu.Unlock()
	if again {
		return
	}
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.reply(a) }()
}

func (b *echoBot) reply(to *activity.Activity) {
	text := "echo: " + to.Text
	out := map[string]any{"type": "message", "text": text, "from": to.Recipient, "recipient": to.From,
		"conversation": to.Conversation, "replyToId": to.ID}
	body, _ := json.Marshal(out)
	u := fmt.Sprintf("%sv3/conversations/%s/activities/%s", to.ServiceURL, to.Conversation.ID, to.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		b.mu.Lock()
		b.replied = append(b.replied, text)
		b.mu.Unlock()
	}
}

func (b *echoBot) counts() (got, replied int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got), len(b.replied)
}

// heal clears the faults the fake was told to answer with.
func (f *fakeOC) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// TestCrashWithRepliesToOmnichannelPending: the real binary (SQLite store) as an Omnichannel
// bot application user in front of a self-hosted bot. Omnichannel's Connector goes down
// (503) while the bot answers three messages; the bridge acknowledges the bot's replies into
// its log, then is killed (SIGKILL) with their deliveries pending. Omnichannel comes back, the
// bridge restarts on the same data, and Omnichannel gets each reply exactly once, in order.
// (Omnichannel de-duplicates by activity id, A2033, so a reply delivered just before the kill
// could come again under its id; the fake counts each id once, as Omnichannel would.)
func TestCrashWithRepliesToOmnichannelPending(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	oc := newFakeOC(t, testAppID, testPassword)
	bot, botURL := newEchoBot(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "bridge.yaml")
	require.NoError(t, os.WriteFile(cfgFile, fmt.Appendf(nil, `omnichannel:
  enabled: true
  app_id: %s
  token_url: %s
  openid_metadata_url: %s
  max_attempts: 1
`, testAppID, oc.tokenURL(), oc.metadataURL()), 0o600))
	p := &testutil.Bridge{Bin: testutil.BuildBridge(t), Addr: testutil.FreeAddr(t), DataDir: filepath.Join(dir, "data"),
		Args: []string{"--config", cfgFile, "--bot-endpoint", botURL},
		Env:  []string{"BRIDGE_OMNICHANNEL_APP_PASSWORD=" + testPassword}}
	p.Start(t)
	oc.mu.Lock()
	oc.bridgeURL = "http://" + p.Addr + "/api/messages"
	oc.mu.Unlock()
	const conv = "crash-oc-conversation"

	oc.mustPost(oc.message(conv, "m0"))
	require.Eventually(t, func() bool { return len(oc.texts(conv)) == 1 }, 20*time.Second, 20*time.Millisecond)

	oc.failNext(1_000_000, http.StatusServiceUnavailable, "", false)
	for i := 1; i <= 3; i++ {
		oc.mustPost(oc.message(conv, fmt.Sprint("m", i)))
	}
	require.Eventually(t, func() bool { _, replied := bot.counts(); return replied == 4 }, 30*time.Second, 20*time.Millisecond,
		"the bridge acknowledges the bot's replies while Omnichannel is down")
	require.Equal(t, []string{"echo: m0"}, oc.texts(conv), "none reached Omnichannel")
	p.Kill(t)

	oc.heal()
	p.Start(t)
	want := []string{"echo: m0", "echo: m1", "echo: m2", "echo: m3"}
	require.Eventually(t, func() bool { return len(oc.texts(conv)) >= len(want) }, 30*time.Second, 20*time.Millisecond,
		"the restarted bridge delivers the pending replies")
	time.Sleep(time.Second) // a duplicate would come within the outbox's first retries
	require.Equal(t, want, oc.texts(conv), "each once, in order")
	ids := map[string]bool{}
	for _, a := range oc.got(conv) {
		require.False(t, ids[a.ID], "one id per reply")
		ids[a.ID] = true
	}
}
