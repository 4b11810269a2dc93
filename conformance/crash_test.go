package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// recordingBot is a self-hosted bot's messaging endpoint (botframework.md §1: POST
// /api/messages, 200 when taken) that records what the bridge delivers, and can be taken down
// and brought back on the same address, as a bot being redeployed is.
type recordingBot struct {
	addr string
	mu   sync.Mutex
	got  []*activity.Activity
	srv  *http.Server
	done chan struct{}
}

func (b *recordingBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a, err := activity.Decode(raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.got = append(b.got, a)
	b.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (b *recordingBot) up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	require.Eventually(t, func() bool { // the address was ours a moment ago; the kernel may hold it briefly
		var err error
		ln, err = net.Listen("tcp", b.addr)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	b.done = make(chan struct{})
	go func() { _ = b.srv.Serve(ln); close(b.done) }()
	t.Cleanup(b.down)
}

func (b *recordingBot) down() {
	if b.srv == nil {
		return
	}
	_ = b.srv.Close()
	<-b.done
	b.srv = nil
}

// messages returns the texts of the message activities the bot got, in order, with their ids.
func (b *recordingBot) messages() (texts, ids []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.got {
		if a.Type == activity.TypeMessage {
			texts, ids = append(texts, a.Text), append(ids, a.ID)
		}
	}
	return texts, ids
}

// dlPost posts a message to a Direct Line conversation and returns the status.
func dlPost(t *testing.T, addr, convID, token, text string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"type": "message", "text": text, "from": map[string]string{"id": "crash-user"}})
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/v3/directline/conversations/%s/activities", addr, convID), bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// dlStart starts a Direct Line conversation with the secret and returns its id.
func dlStart(t *testing.T, addr, secret string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v3/directline/conversations", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var c struct{ ConversationID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
	return c.ConversationID
}

// dlHistory returns the texts of the conversation's messages, as GET /activities has them.
func dlHistory(t *testing.T, addr, convID, token string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v3/directline/conversations/%s/activities", addr, convID), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var set struct{ Activities []activity.Activity }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	var out []string
	for _, a := range set.Activities {
		if a.Type == activity.TypeMessage {
			out = append(out, a.Text)
		}
	}
	return out
}

// TestCrashWithDeliveriesToTheBotPending: the bot's endpoint goes down, the customer goes on
// talking (each activity is acknowledged into the log; the POST reports the bot's failure), the
// bridge is killed (SIGKILL, SQLite store) with those deliveries pending; the bot comes back,
// the bridge restarts on the same data, and the bot gets every activity exactly once, in order,
// under the ids the log gave them.
func TestCrashWithDeliveriesToTheBotPending(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	const secret = "crash-test-secret-0123456789abcdef"
	bot := &recordingBot{addr: testutil.FreeAddr(t)}
	bot.up(t)
	p := &testutil.Bridge{Bin: testutil.BuildBridge(t), Addr: testutil.FreeAddr(t), DataDir: t.TempDir(),
		Args: []string{"--bot-endpoint", "http://" + bot.addr + "/api/messages"},
		Env:  []string{"BRIDGE_DIRECTLINE_SECRET=" + secret}}
	p.Start(t)
	conv := dlStart(t, p.Addr, secret)
	var want []string
	for i := range 3 {
		text := fmt.Sprint("before ", i)
		require.Equal(t, http.StatusOK, dlPost(t, p.Addr, conv, secret, text))
		want = append(want, text)
	}
	texts, _ := bot.messages()
	require.Equal(t, want, texts)

	bot.down()
	for i := range 5 {
		text := fmt.Sprint("while the bot is down ", i)
		status := dlPost(t, p.Addr, conv, secret, text)
		require.Equal(t, http.StatusBadGateway, status, "the POST says the bot failed")
		want = append(want, text)
	}
	require.Equal(t, want, dlHistory(t, p.Addr, conv, secret), "and the activities are in the log")
	p.Kill(t)

	bot.up(t)
	p.Start(t)
	require.Eventually(t, func() bool { texts, _ := bot.messages(); return len(texts) >= len(want) }, 30*time.Second, 20*time.Millisecond,
		"the restarted bridge delivers what was pending")
	require.NoError(t, settle(context.Background(), func() bool { texts, _ := bot.messages(); return len(texts) > len(want) }))
	texts, ids := bot.messages()
	require.Equal(t, want, texts, "each exactly once, in order")
	for i, id := range ids {
		require.Equal(t, fmt.Sprintf("%s|%07d", conv, i), id, "under the log's id")
	}
}

// settle watches for a while that bad never becomes true (a duplicate arriving late).
func settle(ctx context.Context, bad func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if bad() {
			return errors.New("more arrived than expected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
