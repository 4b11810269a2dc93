package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
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

// replyingBot is a self-hosted bot that answers each message within its turn, "echo: <text>",
// through the Connector API of a bridge instance of its choosing (replyTo), not the one that
// delivered the message.
type replyingBot struct {
	replyTo string // host:port
	srv     *httptest.Server
	errs    chan error
}

func (b *replyingBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, err := activity.Decode(mustRead(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if a.Type == activity.TypeMessage {
		reply := map[string]any{"type": "message", "text": "echo: " + a.Text, "replyToId": a.ID,
			"from": map[string]string{"id": "bot"}, "conversation": map[string]string{"id": a.Conversation.ID}}
		body, _ := json.Marshal(reply)
		u := fmt.Sprintf("http://%s/v3/conversations/%s/activities/%s", b.replyTo, url.PathEscape(a.Conversation.ID), url.PathEscape(a.ID))
		resp, err := http.Post(u, "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("reply to %s: %s", b.replyTo, resp.Status)
			}
		}
		if err != nil {
			select {
			case b.errs <- err:
			default:
			}
		}
	}
	w.WriteHeader(http.StatusOK)
}

func mustRead(r *http.Request) []byte {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	return b
}

// TestScaleOutThreeInstances: three bridge processes on one Redis. The customer's client streams
// from instance A and POSTs through instance B; the bot replies to instance C's Connector API.
// The stream gets every activity exactly once, in order: each message, then the bot's echo.
func TestScaleOutThreeInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	redisAddr := testutil.RedisServer(t)
	cfgFile := filepath.Join(t.TempDir(), "bridge.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("store: redis\nredis:\n  url: redis://"+redisAddr+"/0\n"), 0o600))
	bin := testutil.BuildBridge(t)
	bot := &replyingBot{errs: make(chan error, 1)}
	bot.srv = httptest.NewServer(bot)
	t.Cleanup(bot.srv.Close)
	var ins []*testutil.Bridge
	for range 3 {
		p := &testutil.Bridge{Bin: bin, Addr: testutil.FreeAddr(t), DataDir: t.TempDir(),
			// one public URL, as behind a load balancer: it is the issuer of the Direct Line tokens
			Args: []string{"--config", cfgFile, "--bot-endpoint", bot.srv.URL + "/api/messages", "--escalation-target", "none",
				"--public-url", "http://bridge.example"}}
		p.Start(t)
		ins = append(ins, p)
	}
	a, b, c := ins[0], ins[1], ins[2]
	bot.replyTo = c.Addr

	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = rdb.Close() })
	secret, err := rdb.HGet(context.Background(), "bfbridge:values", "directline-secret").Result()
	require.NoError(t, err)

	// the conversation and its token from A, the stream from A
	req, err := http.NewRequest(http.MethodPost, "http://"+a.Addr+"/v3/directline/conversations", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var conv struct {
		ConversationID string `json:"conversationId"`
		Token          string `json:"token"`
		StreamURL      string `json:"streamUrl"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&conv))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	streamURL := strings.Replace(conv.StreamURL, "ws://bridge.example", "ws://"+a.Addr, 1) // the balancer sends it to A
	require.NotEqual(t, conv.StreamURL, streamURL)
	ws, _, err := websocket.DefaultDialer.Dial(streamURL, nil)
	require.NoError(t, err)
	defer ws.Close()

	const n = 10
	var want []string
	for i := range n {
		text := fmt.Sprint("m", i)
		require.Equal(t, http.StatusOK, dlPost(t, b.Addr, conv.ConversationID, conv.Token, text), "POST through B")
		want = append(want, text, "echo: "+text)
	}
	select {
	case err := <-bot.errs:
		t.Fatal(err)
	default:
	}
	var got []string
	seen := map[string]bool{}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(got) < len(want) {
		_, frame, err := ws.ReadMessage()
		require.NoError(t, err, "the stream on A stopped; it had %v", got)
		if len(frame) == 0 {
			continue // a keep-alive
		}
		var set struct{ Activities []activity.Activity }
		require.NoError(t, json.Unmarshal(frame, &set))
		for _, act := range set.Activities {
			if act.Type != activity.TypeMessage {
				continue
			}
			require.False(t, seen[act.ID], "activity %s twice", act.ID)
			seen[act.ID] = true
			got = append(got, act.Text)
		}
	}
	require.Equal(t, want, got, "every activity once, in order")
	_ = ws.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		_, frame, err := ws.ReadMessage()
		if err != nil {
			break
		}
		require.NotContains(t, string(frame), `"message"`, "more than was sent")
	}
}

// TestScaleOutSandboxHandoffAcrossInstances: two bridge processes on one Redis with the sandbox
// (its bot and its contact center). The customer's page talks to instance A; the agent's desk
// page is connected to instance B. The customer asks for a human; the desk offers the
// conversation to the agent on B, who accepts and replies; the customer's stream on A gets the
// agent's words, and the agent's page on B the customer's: routing decided once ("has joined"
// once).
func TestScaleOutSandboxHandoffAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	redisAddr := testutil.RedisServer(t)
	cfgFile := filepath.Join(t.TempDir(), "bridge.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("store: redis\nredis:\n  url: redis://"+redisAddr+"/0\n"), 0o600))
	bin := testutil.BuildBridge(t)
	var ins []*testutil.Bridge
	for range 2 {
		p := &testutil.Bridge{Bin: bin, Addr: testutil.FreeAddr(t), DataDir: t.TempDir(),
			Args: []string{"--config", cfgFile, "--public-url", "http://bridge.example"}}
		p.Start(t)
		ins = append(ins, p)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("instance output:\n%s", p.Output())
			}
		})
	}
	a, b := ins[0], ins[1]

	// the agent signs in on B and becomes Available
	desk, _, err := websocket.DefaultDialer.Dial("ws://"+b.Addr+"/sandbox/api/desk?agent=alex", nil)
	require.NoError(t, err)
	defer desk.Close()
	type deskMsg struct {
		Type           string
		ConversationID string
		Conversation   *struct{ ID, State string }
		Agent          *struct{ Presence string }
		Entry          *struct{ Role, Text string }
	}
	deskNext := func(match func(deskMsg) bool, what string) deskMsg {
		t.Helper()
		require.NoError(t, desk.SetReadDeadline(time.Now().Add(15*time.Second)))
		for {
			var m deskMsg
			require.NoError(t, desk.ReadJSON(&m), "waiting on the desk for %s", what)
			if match(m) {
				return m
			}
		}
	}
	deskNext(func(m deskMsg) bool { return m.Type == "state" }, "the state")
	require.NoError(t, desk.WriteJSON(map[string]string{"type": "presence", "presence": "Available"}))
	deskNext(func(m deskMsg) bool { return m.Type == "agent" && m.Agent != nil && m.Agent.Presence == "Available" }, "Available")

	// the customer's page on A: a token from the sandbox, the conversation, the stream
	resp, err := http.Post("http://"+a.Addr+"/sandbox/api/customer-token", "application/json", nil)
	require.NoError(t, err)
	var tok struct {
		ConversationID string `json:"conversationId"`
		Token          string `json:"token"`
		UserID         string `json:"userId"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	resp.Body.Close()
	req, err := http.NewRequest(http.MethodPost, "http://"+a.Addr+"/v3/directline/conversations", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var conv struct {
		ConversationID string `json:"conversationId"`
		StreamURL      string `json:"streamUrl"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&conv))
	resp.Body.Close()
	require.Equal(t, tok.ConversationID, conv.ConversationID)
	stream, _, err := websocket.DefaultDialer.Dial(strings.Replace(conv.StreamURL, "ws://bridge.example", "ws://"+a.Addr, 1), nil)
	require.NoError(t, err)
	defer stream.Close()
	var heard []string
	hear := func(text string) {
		t.Helper()
		require.NoError(t, stream.SetReadDeadline(time.Now().Add(15*time.Second)))
		for {
			_, frame, err := stream.ReadMessage()
			require.NoError(t, err, "waiting on the customer's stream for %q; heard %q", text, heard)
			if len(frame) == 0 {
				continue
			}
			var set struct{ Activities []activity.Activity }
			require.NoError(t, json.Unmarshal(frame, &set))
			found := false
			for _, act := range set.Activities {
				if act.Type == activity.TypeMessage {
					heard = append(heard, act.Text)
					found = found || strings.Contains(act.Text, text)
				}
			}
			if found {
				return
			}
		}
	}
	say := func(text string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"type": "message", "text": text, "from": map[string]string{"id": tok.UserID}})
		req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/v3/directline/conversations/%s/activities", a.Addr, conv.ConversationID), bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "POST %q", text)
	}

	say("I want to talk to a human")
	deskNext(func(m deskMsg) bool {
		return m.Type == "conversation" && m.Conversation != nil && m.Conversation.ID == conv.ConversationID && m.Conversation.State == "offered"
	}, "the offer")
	require.NoError(t, desk.WriteJSON(map[string]string{"type": "accept", "conversationId": conv.ConversationID}))
	hear("has joined")
	require.NoError(t, desk.WriteJSON(map[string]string{"type": "send", "conversationId": conv.ConversationID, "text": "hello from B"}))
	hear("hello from B")
	say("thanks, A here")
	deskNext(func(m deskMsg) bool {
		return m.Type == "activity" && m.ConversationID == conv.ConversationID && m.Entry != nil && m.Entry.Text == "thanks, A here"
	}, "the customer's words")
	joined := 0
	for _, h := range heard {
		if strings.Contains(h, "has joined") {
			joined++
		}
	}
	require.Equal(t, 1, joined, "the agent joined once: %q", heard)
}
