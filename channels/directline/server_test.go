package directline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

const testSecret = "test-secret-0123456789"

// echoBot is a bot channel that answers each message with "echo: <text>" through the Hub, before
// it acknowledges, as botbuilder bots do. It can be told to fail or to stall.
type echoBot struct {
	hub   *bridge.Hub
	mu    sync.Mutex
	got   []*activity.Activity
	fail  int
	stall time.Duration
}

func (b *echoBot) Name() string { return "botframework" }

func (b *echoBot) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	b.mu.Lock()
	b.got = append(b.got, a)
	fail, stall := b.fail, b.stall
	b.mu.Unlock()
	if stall > 0 {
		select {
		case <-time.After(stall):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if fail != 0 {
		return "", &bridge.DeliveryError{Leg: to.Key(), Status: fail, Err: fmt.Errorf("bot answered %d", fail)}
	}
	if a.Type == activity.TypeMessage {
		reply := &activity.Activity{Type: "message", Text: "echo: " + a.Text, ReplyToID: a.ID, From: &to.Bot, InputHint: activity.InputHintAccepting}
		if _, err := b.hub.Receive(ctx, to, reply, ""); err != nil {
			return "", err
		}
	}
	return "", nil
}

func (b *echoBot) set(fail int, stall time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail, b.stall = fail, stall
}

type fixture struct {
	srv *Server
	ts  *httptest.Server
	bot *echoBot
	hub *bridge.Hub
	url string
}

func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{DeliveryTimeout: 2 * time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	bot := &echoBot{hub: hub}
	hub.Register(bot)
	mux := http.NewServeMux()
	ts := httptest.NewUnstartedServer(mux)
	ts.Start()
	t.Cleanup(ts.Close)
	cfg := Config{PublicURL: ts.URL, Secret: testSecret, KeepAlive: time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, hub, zerolog.Nop())
	require.NoError(t, err)
	hub.Register(srv)
	srv.Register(mux)
	return &fixture{srv: srv, ts: ts, bot: bot, hub: hub, url: ts.URL + "/v3/directline"}
}

// call makes one API request and decodes the JSON answer into out (when not nil).
func (f *fixture) call(t testing.TB, method, path, cred string, body any, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	require.NoError(t, err)
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), "body: %s", raw)
	}
	return resp
}

func (f *fixture) start(t testing.TB) conversationResponse {
	t.Helper()
	var c conversationResponse
	resp := f.call(t, "POST", "/conversations", testSecret, nil, &c)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	return c
}

type errBody struct {
	Error          struct{ Code, Message string } `json:"error"`
	HTTPStatusCode int                            `json:"httpStatusCode"`
}

func message(text, clientID string) map[string]any {
	return map[string]any{"type": "message", "text": text, "from": map[string]any{"id": "u1", "name": "Ursula"},
		"channelData": map[string]any{"clientActivityID": clientID}, "futureField": 42}
}

func TestStartConversation(t *testing.T) {
	f := newFixture(t, nil)
	c := f.start(t)
	require.NotContains(t, c.ConversationID, "/")
	require.NotContains(t, c.ConversationID, "|")
	require.Regexp(t, `^[A-Za-z0-9_-]+$`, c.ConversationID)
	require.Equal(t, 1800, c.ExpiresIn)
	require.NotEmpty(t, c.ReferenceGrammarID)
	require.True(t, strings.HasPrefix(c.StreamURL, "ws://"+strings.TrimPrefix(f.ts.URL, "http://")+"/v3/directline/conversations/"+c.ConversationID+"/stream?"), c.StreamURL)
	require.Contains(t, c.StreamURL, "watermark=-")

	claims := jwt.MapClaims{}
	_, _, err := jwt.NewParser().ParseUnverified(c.Token, claims)
	require.NoError(t, err)
	require.Equal(t, c.ConversationID, claims["conv"])
	require.NotNil(t, claims["exp"])

	t.Run("a generated token starts its conversation once: 201 then 200", func(t *testing.T) {
		var g conversationResponse
		resp := f.call(t, "POST", "/tokens/generate", testSecret, map[string]any{"user": map[string]any{"id": "dl_alice"}}, &g)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Empty(t, g.StreamURL, "generate does not start the conversation")
		claims := jwt.MapClaims{}
		_, _, err := jwt.NewParser().ParseUnverified(g.Token, claims)
		require.NoError(t, err)
		require.Equal(t, "dl_alice", claims["user"])
		var s1, s2 conversationResponse
		require.Equal(t, http.StatusCreated, f.call(t, "POST", "/conversations", g.Token, nil, &s1).StatusCode)
		require.Equal(t, http.StatusOK, f.call(t, "POST", "/conversations", g.Token, nil, &s2).StatusCode)
		require.Equal(t, g.ConversationID, s1.ConversationID)
		require.Equal(t, g.ConversationID, s2.ConversationID)
		require.Equal(t, g.Token, s1.Token, "the caller's token is the conversation's token")
		require.InDelta(t, 1800, s1.ExpiresIn, 2, "expires_in is what is left of that token")
	})

	t.Run("stream tokens live 60 seconds", func(t *testing.T) {
		tok := strings.SplitN(c.StreamURL, "t=", 2)[1]
		claims := jwt.MapClaims{}
		_, _, err := jwt.NewParser().ParseUnverified(tok, claims)
		require.NoError(t, err)
		require.InDelta(t, 60, claims["exp"].(float64)-claims["nbf"].(float64), 1)
	})
}

func TestPostEchoAndPoll(t *testing.T) {
	f := newFixture(t, nil)
	c := f.start(t)
	var res map[string]string
	resp := f.call(t, "POST", "/conversations/"+c.ConversationID+"/activities", c.Token, message("hello <b>", "cid-1"), &res)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, c.ConversationID+"|0000000", res["id"])

	var set struct {
		Activities []map[string]any `json:"activities"`
		Watermark  string           `json:"watermark"`
	}
	f.call(t, "GET", "/conversations/"+c.ConversationID+"/activities?watermark=", c.Token, nil, &set)
	require.Len(t, set.Activities, 2)
	require.Equal(t, "1", set.Watermark)
	echo, reply := set.Activities[0], set.Activities[1]
	require.Equal(t, res["id"], echo["id"], "the echo has the id the POST returned")
	require.Equal(t, "cid-1", echo["channelData"].(map[string]any)["clientActivityID"])
	require.Equal(t, float64(42), echo["futureField"], "unknown fields survive (A2005)")
	require.Equal(t, "directline", echo["channelId"])
	require.Equal(t, "hello <b>", echo["text"])
	require.Regexp(t, `Z$`, echo["timestamp"])
	require.Equal(t, "echo: hello <b>", reply["text"])
	require.Equal(t, res["id"], reply["replyToId"])
	require.Equal(t, c.ConversationID+"|0000001", reply["id"])

	// the bot saw the conversation start, then the message
	f.bot.mu.Lock()
	types := []string{}
	for _, a := range f.bot.got {
		types = append(types, a.Type)
	}
	f.bot.mu.Unlock()
	require.Equal(t, []string{"conversationUpdate", "conversationUpdate", "message"}, types)

	for _, wm := range []string{"1"} {
		set.Activities = nil
		f.call(t, "GET", "/conversations/"+c.ConversationID+"/activities?watermark="+wm, c.Token, nil, &set)
		require.Empty(t, set.Activities)
		require.Equal(t, "1", set.Watermark)
	}
	set.Activities = nil
	f.call(t, "GET", "/conversations/"+c.ConversationID+"/activities?watermark=-", c.Token, nil, &set)
	require.Len(t, set.Activities, 2, "watermark - reads from the start")
	set.Activities = nil
	f.call(t, "GET", "/conversations/"+c.ConversationID+"/activities?watermark=0", c.Token, nil, &set)
	require.Len(t, set.Activities, 1)
}

func TestTokenUserOverridesFrom(t *testing.T) {
	f := newFixture(t, nil)
	var g conversationResponse
	f.call(t, "POST", "/tokens/generate", testSecret, map[string]any{"user": map[string]any{"id": "dl_bound"}}, &g)
	f.call(t, "POST", "/conversations", g.Token, nil, nil)
	f.call(t, "POST", "/conversations/"+g.ConversationID+"/activities", g.Token, message("x", "1"), nil)
	var set struct{ Activities []map[string]any }
	f.call(t, "GET", "/conversations/"+g.ConversationID+"/activities", g.Token, nil, &set)
	require.Equal(t, "dl_bound", set.Activities[0]["from"].(map[string]any)["id"])
}

func TestErrors(t *testing.T) {
	f := newFixture(t, nil)
	c := f.start(t)
	other := f.start(t)
	post := "/conversations/" + c.ConversationID + "/activities"

	expired, err := newTokens(testSecret, f.srv.cfg.PublicURL+"/v3/directline", time.Minute,
		func() time.Time { return time.Now().Add(-time.Hour) }).issue(c.ConversationID, "", nil, false)
	require.NoError(t, err)
	forged, err := newTokens("another-secret-9876543210", f.srv.cfg.PublicURL+"/v3/directline", time.Minute, time.Now).issue(c.ConversationID, "", nil, false)
	require.NoError(t, err)

	tests := []struct {
		name, method, path, cred string
		body                     any
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", post, c.Token, `{"type":`, 400, "BadArgument"},
		{"not an object", "POST", post, c.Token, `[1]`, 400, "BadArgument"},
		{"no type", "POST", post, c.Token, `{"text":"x","from":{"id":"u"}}`, 400, "MissingProperty"},
		{"no from", "POST", post, c.Token, `{"type":"message"}`, 400, "MissingProperty"},
		{"oversize activity", "POST", post, c.Token, `{"type":"message","from":{"id":"u"},"text":"` + strings.Repeat("a", activity.MaxActivityChars) + `"}`, 413, CodeTooLarge},
		{"unknown conversation", "POST", "/conversations/nope/activities", testSecret, message("x", "1"), 404, "BadArgument"},
		{"unknown conversation, GET", "GET", "/conversations/nope/activities", testSecret, nil, 404, "BadArgument"},
		{"unknown conversation, reconnect", "GET", "/conversations/nope", testSecret, nil, 404, "BadArgument"},
		{"missing auth", "POST", post, "", message("x", "1"), 401, "BadArgument"},
		{"wrong secret", "POST", post, "not-the-secret", message("x", "1"), 401, "BadArgument"},
		{"forged token", "POST", post, forged, message("x", "1"), 401, "BadArgument"},
		{"expired token", "POST", post, expired, message("x", "1"), 403, "TokenExpired"},
		{"expired token cannot refresh", "POST", "/tokens/refresh", expired, nil, 403, "TokenExpired"},
		{"token of another conversation", "GET", "/conversations/" + other.ConversationID + "/activities", c.Token, nil, 403, "Forbidden"},
		{"bad watermark", "GET", "/conversations/" + c.ConversationID + "/activities?watermark=abc", c.Token, nil, 400, "BadArgument"},
		{"generate needs the secret", "POST", "/tokens/generate", c.Token, nil, 403, "Forbidden"},
		{"unknown endpoint", "GET", "/nothing/here", c.Token, nil, 404, "NotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var eb errBody
			resp := f.call(t, tc.method, tc.path, tc.cred, tc.body, &eb)
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, tc.code, eb.Error.Code)
			require.NotEmpty(t, eb.Error.Message)
			require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
		})
	}
	t.Run("the conversation goes on working after every error", func(t *testing.T) {
		var res map[string]string
		resp := f.call(t, "POST", post, c.Token, message("still here", "ok"), &res)
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, c.ConversationID+"|0000000", res["id"], "no refused activity took a sequence number")
		var set struct{ Activities []map[string]any }
		f.call(t, "GET", "/conversations/"+c.ConversationID+"/activities", c.Token, nil, &set)
		require.Len(t, set.Activities, 2)
		require.Equal(t, "echo: still here", set.Activities[1]["text"])
	})

	t.Run("bot errors and timeouts", func(t *testing.T) {
		f := newFixture(t, nil)
		c := f.start(t)
		post := "/conversations/" + c.ConversationID + "/activities"
		f.bot.set(500, 0)
		var eb errBody
		resp := f.call(t, "POST", post, c.Token, message("x", "1"), &eb)
		require.Equal(t, 502, resp.StatusCode)
		require.Equal(t, "BotError", eb.Error.Code)
		require.Equal(t, 500, eb.HTTPStatusCode)
		f.bot.set(400, 0)
		resp = f.call(t, "POST", post, c.Token, message("x", "2"), &eb)
		require.Equal(t, 502, resp.StatusCode)
		require.Equal(t, "BotRejectedActivity", eb.Error.Code)
		f.bot.set(0, 5*time.Second) // over the 2 s delivery timeout of the fixture
		resp = f.call(t, "POST", post, c.Token, message("x", "3"), &eb)
		require.Equal(t, 504, resp.StatusCode)
		require.Equal(t, "BotError", eb.Error.Code)
		f.bot.set(0, 0)
		var res map[string]string
		resp = f.call(t, "POST", post, c.Token, message("after", "4"), &res)
		require.Equal(t, 200, resp.StatusCode, "the conversation goes on after errors")
		require.Equal(t, c.ConversationID+"|0000003", res["id"])
	})

	t.Run("throttling answers 429 with Retry-After", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.RatePerConversation = 1 })
		c := f.start(t)
		post := "/conversations/" + c.ConversationID + "/activities"
		var got429 *http.Response
		for i := 0; i < 10 && got429 == nil; i++ {
			if resp := f.call(t, "POST", post, c.Token, message("x", fmt.Sprint(i)), nil); resp.StatusCode == 429 {
				got429 = resp
			}
		}
		require.NotNil(t, got429)
		require.Equal(t, "1", got429.Header.Get("Retry-After"))
	})

	t.Run("preflight", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", f.url+post, nil)
		req.Header.Set("Origin", "http://example.test")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-ms-bot-agent")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		allow := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		for _, h := range []string{"authorization", "content-type", "x-ms-bot-agent", "x-requested-with"} {
			require.Contains(t, allow, h)
		}
	})
}

func TestRefreshAndReconnect(t *testing.T) {
	f := newFixture(t, nil)
	c := f.start(t)
	var r conversationResponse
	resp := f.call(t, "POST", "/tokens/refresh", c.Token, nil, &r)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, c.ConversationID, r.ConversationID)
	require.NotEmpty(t, r.Token)
	require.NotEqual(t, c.Token, r.Token, "a refresh gives a new token, even within the same second")
	f.call(t, "POST", "/conversations/"+c.ConversationID+"/activities", r.Token, message("x", "1"), nil)

	var re conversationResponse
	resp = f.call(t, "GET", "/conversations/"+c.ConversationID+"?watermark=0", r.Token, nil, &re)
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, re.StreamURL, "watermark=0")
	require.NotEmpty(t, re.Token)
}

func dial(t *testing.T, streamURL string) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(streamURL, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readSet reads frames until a non-empty one, and returns it with how many empty ones came first.
func readSet(t *testing.T, conn *websocket.Conn) (activitySet, int) {
	t.Helper()
	empty := 0
	for {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, data, err := conn.ReadMessage()
		require.NoError(t, err)
		if len(data) == 0 {
			empty++
			continue
		}
		var set activitySet
		require.NoError(t, json.Unmarshal(data, &set))
		return set, empty
	}
}

func ids(set activitySet) []string {
	var out []string
	for _, raw := range set.Activities {
		var a struct{ ID string }
		_ = json.Unmarshal(raw, &a)
		out = append(out, a.ID)
	}
	return out
}

func TestStream(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.KeepAlive = 100 * time.Millisecond })
	c := f.start(t)
	id := c.ConversationID
	// posted before the socket opens: replayed first [RECV "Timing"]
	f.call(t, "POST", "/conversations/"+id+"/activities", c.Token, message("early", "1"), nil)
	conn := dial(t, c.StreamURL)
	set, _ := readSet(t, conn)
	require.Equal(t, []string{id + "|0000000", id + "|0000001"}, ids(set))
	require.Equal(t, "1", set.Watermark)

	f.call(t, "POST", "/conversations/"+id+"/activities", c.Token, message("live", "2"), nil)
	got := []string{}
	for len(got) < 2 {
		set, _ = readSet(t, conn)
		got = append(got, ids(set)...)
	}
	require.Equal(t, []string{id + "|0000002", id + "|0000003"}, got)

	t.Run("keep-alive frames are empty", func(t *testing.T) {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(2*time.Second)))
		_, data, err := conn.ReadMessage()
		require.NoError(t, err)
		require.Empty(t, data)
		require.NoError(t, conn.WriteMessage(websocket.TextMessage, nil), "client keep-alives are ignored")
	})

	t.Run("reconnect replays after the watermark only", func(t *testing.T) {
		var re conversationResponse
		f.call(t, "GET", "/conversations/"+id+"?watermark=1", c.Token, nil, &re)
		conn2 := dial(t, re.StreamURL)
		set, _ := readSet(t, conn2)
		require.Equal(t, []string{id + "|0000002", id + "|0000003"}, ids(set))
	})

	t.Run("no watermark: only new activities", func(t *testing.T) {
		u := strings.Replace(c.StreamURL, "watermark=-&", "", 1)
		conn3 := dial(t, u)
		f.call(t, "POST", "/conversations/"+id+"/activities", c.Token, message("new", "3"), nil)
		set, _ := readSet(t, conn3)
		require.Equal(t, id+"|0000004", ids(set)[0])
	})

	t.Run("stream refuses other conversations and bad tokens", func(t *testing.T) {
		other := f.start(t)
		u := strings.Replace(other.StreamURL, "t=", "t=x", 1)
		_, resp, err := websocket.DefaultDialer.Dial(u, nil)
		require.Error(t, err)
		require.Equal(t, 401, resp.StatusCode)
		u = strings.Replace(c.StreamURL, "/"+id+"/", "/"+other.ConversationID+"/", 1)
		_, resp, err = websocket.DefaultDialer.Dial(u, nil)
		require.Error(t, err)
		require.Equal(t, 403, resp.StatusCode)
	})

	t.Run("shutdown closes streams with 1012", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, f.srv.Shutdown(ctx))
		for {
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
			_, _, err := conn.ReadMessage()
			if err != nil {
				require.True(t, websocket.IsCloseError(err, websocket.CloseServiceRestart), "got %v", err)
				break
			}
		}
		require.Equal(t, 0, f.srv.Streams())
	})
}

func TestUpload(t *testing.T) {
	f := newFixture(t, nil)
	c := f.start(t)
	up := f.url + "/conversations/" + c.ConversationID + "/upload?userId=u1"

	send := func(t *testing.T, body io.Reader, ctype string, hdr map[string]string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", up, body)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		req.Header.Set("Content-Type", ctype)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp, raw
	}
	lastActivity := func(t *testing.T, id string) *activity.Activity {
		recs, err := f.srv.hub.Since(context.Background(), c.ConversationID, -1, 0)
		require.NoError(t, err)
		for _, r := range recs {
			if r.Activity.ID == id {
				return r.Activity
			}
		}
		t.Fatalf("activity %s not in the log", id)
		return nil
	}

	t.Run("multipart with an activity part", func(t *testing.T) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="activity"`)
		h.Set("Content-Type", activityContentType)
		pw, _ := mw.CreatePart(h)
		_, _ = pw.Write([]byte(`{"type":"message","text":"see file","from":{"id":"u1"},"attachments":[{"contentType":"text/plain","name":"a.txt"}],"channelData":{"clientActivityID":"up1"}}`))
		fh := textproto.MIMEHeader{}
		fh.Set("Content-Disposition", `form-data; name="file"; filename="a.txt"`)
		fh.Set("Content-Type", "text/plain")
		fw, _ := mw.CreatePart(fh)
		_, _ = fw.Write([]byte("hello file"))
		require.NoError(t, mw.Close())
		resp, raw := send(t, &buf, mw.FormDataContentType(), nil)
		require.Equal(t, 200, resp.StatusCode, string(raw))
		var res map[string]string
		require.NoError(t, json.Unmarshal(raw, &res))
		a := lastActivity(t, res["id"])
		require.Equal(t, "see file", a.Text)
		require.Equal(t, "up1", a.ClientActivityID())
		require.Len(t, a.Attachments, 1)
		require.Equal(t, "a.txt", a.Attachments[0].Name)
		got, err := http.Get(a.Attachments[0].ContentURL)
		require.NoError(t, err)
		defer got.Body.Close()
		body, _ := io.ReadAll(got.Body)
		require.Equal(t, "hello file", string(body))
		require.Equal(t, "text/plain", got.Header.Get("Content-Type"))
	})

	t.Run("single body", func(t *testing.T) {
		resp, raw := send(t, strings.NewReader("\x89PNG..."), "image/png", map[string]string{"Content-Disposition": `name="file"; filename="x.png"`})
		require.Equal(t, 200, resp.StatusCode, string(raw))
		var res map[string]string
		require.NoError(t, json.Unmarshal(raw, &res))
		a := lastActivity(t, res["id"])
		require.Equal(t, "x.png", a.Attachments[0].Name)
		require.Equal(t, "image/png", a.Attachments[0].ContentType)
		require.Equal(t, "u1", a.From.ID)
	})

	t.Run("over 4 MB is refused with 413", func(t *testing.T) {
		resp, raw := send(t, bytes.NewReader(make([]byte, 4<<20+1)), "application/octet-stream", map[string]string{"Content-Disposition": `name="file"; filename="big.bin"`})
		require.Equal(t, 413, resp.StatusCode, string(raw))
	})

	t.Run("userId is required", func(t *testing.T) {
		req, _ := http.NewRequest("POST", strings.TrimSuffix(up, "?userId=u1"), strings.NewReader("x"))
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 400, resp.StatusCode)
	})

	t.Run("unknown file", func(t *testing.T) {
		resp, err := http.Get(f.url + "/attachments/nope/x.txt")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 404, resp.StatusCode)
	})
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Secret: testSecret}, {PublicURL: "ftp://x", Secret: testSecret}, {PublicURL: "http://x"}, {PublicURL: "http://x", Secret: "short"}} {
		require.Error(t, c.Validate())
	}
	require.NoError(t, (&Config{PublicURL: "http://127.0.0.1:8080", Secret: testSecret}).Validate())
}

func TestLogsCarryNoSecretsOrText(t *testing.T) {
	var logs testutil.Buffer
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{DeliveryTimeout: time.Second}, zerolog.New(&logs).Level(zerolog.DebugLevel))
	t.Cleanup(hub.Close)
	bot := &echoBot{hub: hub}
	hub.Register(bot)
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	srv, err := New(Config{PublicURL: ts.URL, Secret: testSecret, KeepAlive: 50 * time.Millisecond}, hub, zerolog.New(&logs).Level(zerolog.DebugLevel))
	require.NoError(t, err)
	hub.Register(srv)
	srv.Register(mux)
	f := &fixture{srv: srv, ts: ts, bot: bot, url: ts.URL + "/v3/directline"}

	c := f.start(t)
	conn := dial(t, c.StreamURL)
	f.call(t, "POST", "/conversations/"+c.ConversationID+"/activities", c.Token, message("my card number is 4111", "x"), nil)
	readSet(t, conn)
	f.call(t, "POST", "/conversations/"+c.ConversationID+"/activities", "wrong-"+c.Token, message("x", "y"), nil)
	bot.set(500, 0)
	f.call(t, "POST", "/conversations/"+c.ConversationID+"/activities", c.Token, message("my pin is 1234", "z"), nil)
	conn.Close()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "stream closed") }, 5*time.Second, 10*time.Millisecond, "the stream's close is logged")

	out := logs.String()
	require.Contains(t, out, c.ConversationID, "logs name the conversation")
	for _, secret := range []string{testSecret, c.Token, strings.Split(c.StreamURL, "t=")[1], "4111", "1234"} {
		require.NotContains(t, out, secret)
	}
}
