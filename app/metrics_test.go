package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/load"
)

const metricsSecret = "metrics-test-secret-0123456789"

// handoffBot is a Bot Framework bot over HTTP (botframework.md: the Connector protocol, the
// bridge's anonymous development mode): load's EchoBot answers messages, except that a message
// asking for a human is answered with a Bot Framework handoff.initiate event (botframework.md,
// handoff events) and that its very first turn is refused once with 429 and Retry-After: 1, as
// Azure Bot Service's throttling does, so that the outbox retries it.
type handoffBot struct {
	echo    *load.EchoBot
	refused atomic.Bool
}

func (b *handoffBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var a struct {
		Type, ID, Text, ServiceURL    string
		From, Recipient, Conversation struct {
			ID string `json:"id"`
		}
	}
	_ = json.Unmarshal(body, &a)
	if a.Type == "message" && b.refused.CompareAndSwap(false, true) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "throttled", http.StatusTooManyRequests)
		return
	}
	if a.Type == "message" && strings.Contains(a.Text, "human") {
		ev := map[string]any{"type": "event", "name": "handoff.initiate", "from": a.Recipient, "recipient": a.From,
			"conversation": a.Conversation, "replyToId": a.ID, "value": map[string]any{"BotHandoffTopic": "General"}}
		raw, _ := json.Marshal(ev)
		u := strings.TrimRight(a.ServiceURL, "/") + "/v3/conversations/" + a.Conversation.ID + "/activities"
		resp, err := http.Post(u, "application/json", bytes.NewReader(raw))
		if err == nil {
			resp.Body.Close()
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	b.echo.ServeHTTP(w, r)
}

// startMetricsBridge serves the bridge with the Direct Line server, a Bot Framework bot over HTTP
// and the sandbox desk as the contact center, and the admin handler beside it.
func startMetricsBridge(t *testing.T, store string, bot http.Handler) (*app.App, *httptest.Server) {
	t.Helper()
	cfg := app.Defaults()
	cfg.Store = store
	dl := app.SectionOf[directline.Section](&cfg, "directline")
	dl.Secret, dl.RatePerConversation = metricsSecret, -1
	if bot != nil {
		bs := httptest.NewServer(bot)
		t.Cleanup(bs.Close)
		app.SectionOf[botframework.Section](&cfg, "bot").BotEndpoint = bs.URL + "/api/messages"
	}
	a := apptest.Serve(t, cfg, apptest.Log(t, zerolog.WarnLevel))
	admin := httptest.NewServer(a.AdminHandler())
	t.Cleanup(admin.Close)
	return a, admin
}

// dlConversation starts a Direct Line conversation with the secret.
func dlConversation(t *testing.T, base string) (id, streamURL string) {
	t.Helper()
	var c struct{ ConversationID, StreamURL string }
	dlPost(t, base+"/v3/directline/conversations", "", &c)
	return c.ConversationID, c.StreamURL
}

func dlSay(t *testing.T, base, conv, text string) {
	t.Helper()
	dlPost(t, base+"/v3/directline/conversations/"+conv+"/activities",
		fmt.Sprintf(`{"type":"message","from":{"id":"dl_customer"},"text":%q}`, text), nil)
}

func dlPost(t *testing.T, u, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+metricsSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, u)
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
}

func dlPostStatus(t *testing.T, u, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+metricsSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// agentDesk signs an agent of the sandbox desk in (its websocket, as the desk page does).
func agentDesk(t *testing.T, base, agent, presence string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/sandbox/api/desk?agent="+agent, nil)
	require.NoError(t, err)
	require.NoError(t, conn.WriteJSON(map[string]string{"type": "presence", "presence": presence}))
	return conn
}

// offered waits for the desk to offer the agent a conversation, and returns its id.
func offered(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	for {
		var m struct {
			Type         string
			Conversation *struct{ ID, State string }
		}
		require.NoError(t, conn.ReadJSON(&m))
		if m.Type == "conversation" && m.Conversation != nil && m.Conversation.State == "offered" {
			return m.Conversation.ID
		}
	}
}

// scrape reads the admin listener's /metrics: each sample line's value by series.
func scrape(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

// familyOf is the family a series belongs to (histograms' _bucket, _sum and _count folded).
func familyOf(series string) string {
	name, _, _ := strings.Cut(series, "{")
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if strings.HasSuffix(name, suffix) && strings.Contains(name, "_seconds") {
			return strings.TrimSuffix(name, suffix)
		}
	}
	return name
}

// documented are the families docs/metrics.md lists (its table's first column).
func documented(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../docs/metrics.md")
	require.NoError(t, err)
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(bfbridge_[a-z_]+)` \\|").FindAllStringSubmatch(string(raw), -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

// After a handoff to the sandbox desk (placed, accepted, ended) and a small load run of
// conversations with a bot over HTTP (one refused turn, retried after its Retry-After), the
// admin listener's /metrics has a non-zero series in every family of the bridge's, the Go
// runtime's and the process's; the public listener has no /metrics; and docs/metrics.md names
// exactly the families the registry exposes.
func TestMetricsAfterHandoffAndLoad(t *testing.T) {
	echo := load.NewEchoBot(zerolog.Nop())
	t.Cleanup(echo.Close)
	a, admin := startMetricsBridge(t, "sqlite", &handoffBot{echo: echo})
	base := a.Config().PublicURL

	for _, other := range []string{"sam", "nina"} { // Alex alone is Available: the offer goes to Alex
		agentDesk(t, base, other, "Offline").Close()
	}
	alex := agentDesk(t, base, "alex", "Available")
	defer alex.Close()

	conv, streamURL := dlConversation(t, base)
	stream, _, err := websocket.DefaultDialer.Dial(streamURL, nil)
	require.NoError(t, err)
	_, stream2URL := dlConversation(t, base) // stays open while /metrics is read
	stream2, _, err := websocket.DefaultDialer.Dial(stream2URL, nil)
	require.NoError(t, err)
	defer stream2.Close()
	// Refused once with Retry-After: the customer's POST answers 502 as Azure's Direct Line does
	// when the bot fails, and the outbox delivers it again after the wait.
	dlPostStatus(t, base+"/v3/directline/conversations/"+conv+"/activities", `{"type":"message","from":{"id":"dl_customer"},"text":"hello"}`)
	// Until then the conversation's line is failing: this one waits behind it (502, kept).
	dlPostStatus(t, base+"/v3/directline/conversations/"+conv+"/activities", `{"type":"message","from":{"id":"dl_customer"},"text":"I want to talk to a human"}`)
	id := offered(t, alex)
	require.NoError(t, alex.WriteJSON(map[string]string{"type": "accept", "conversationId": id}))
	require.NoError(t, alex.WriteJSON(map[string]string{"type": "send", "conversationId": id, "text": "Hello, this is Alex."}))
	require.NoError(t, alex.WriteJSON(map[string]string{"type": "end", "conversationId": id}))

	for i := range 20 { // the load run: small, closed loop
		c, _ := dlConversation(t, base)
		dlSay(t, base, c, fmt.Sprint("message ", i))
	}
	require.NoError(t, stream.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)))
	stream.Close()

	var got map[string]float64
	nonZero := map[string]bool{}
	require.Eventually(t, func() bool {
		got = scrape(t, admin.URL)
		clear(nonZero)
		for s, v := range got {
			if v != 0 {
				nonZero[familyOf(s)] = true
			}
		}
		return nonZero["bfbridge_escalations_total"] && got[`bfbridge_escalations_total{outcome="ended",target="desk"}`] > 0 &&
			nonZero["bfbridge_websocket_closes_total"]
	}, 15*time.Second, 200*time.Millisecond)

	docs := documented(t)
	require.NotEmpty(t, docs)
	for _, f := range docs {
		require.True(t, nonZero[f], "%s has no non-zero series", f)
	}
	for _, f := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		require.True(t, nonZero[f], "%s has no non-zero series", f)
	}
	for _, series := range []string{
		`bfbridge_escalations_total{outcome="placed",target="desk"}`, `bfbridge_escalations_total{outcome="accepted",target="desk"}`,
		`bfbridge_deliveries_total{channel="botframework",outcome="retried"}`, `bfbridge_deliveries_total{channel="botframework",outcome="ok"}`,
		`bfbridge_outbound_requests_total{class="4xx",peer="bot"}`, `bfbridge_outbound_retry_after_seconds_count{peer="bot"}`,
		`bfbridge_websocket_closes_total{channel="directline",reason="client_closed"}`,
		`bfbridge_http_requests_total{class="2xx",code="201",route="POST /v3/directline/conversations"}`,
		`bfbridge_activities_appended_total{channel="directline",role="customer"}`, `bfbridge_open_sessions{channel="desk"}`,
	} {
		require.Positive(t, got[series], series)
	}

	// The registry's own families are exactly those docs/metrics.md lists.
	var exposed []string
	seen := map[string]bool{}
	for s := range got {
		if f := familyOf(s); strings.HasPrefix(f, "bfbridge_") && !seen[f] {
			seen[f] = true
			exposed = append(exposed, f)
		}
	}
	sort.Strings(exposed)
	require.Equal(t, docs, exposed, "docs/metrics.md and the registry disagree")

	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "the public listener has no /metrics")
}

// The label sets are bounded: 1,000 more conversations (each with a message and the bot's
// answer) add no series; a conversation's id is never a label.
func TestMetricsSeriesBounded(t *testing.T) {
	a, admin := startMetricsBridge(t, "memory", nil) // the sandbox bot
	base := a.Config().PublicURL
	series := func() map[string]bool {
		out := map[string]bool{}
		for s := range scrape(t, admin.URL) {
			if strings.HasPrefix(s, "bfbridge_") {
				out[s] = true
			}
		}
		return out
	}
	open := func(n int) {
		for range n {
			c, _ := dlConversation(t, base)
			dlSay(t, base, c, "hello")
		}
		require.NoError(t, a.Hub.Wait(t.Context()))
	}
	open(20)
	before := series()
	open(1000)
	last, _ := dlConversation(t, base)
	after := series()
	for s := range after {
		require.True(t, before[s], "a new series: %s", s)
	}
	require.Len(t, after, len(before), "the number of series changed with the conversations")
	for s := range scrape(t, admin.URL) {
		require.NotContains(t, s, last, "a conversation id is a label")
	}
}
