package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/internal/testutil"
	"github.com/bfbridge/bfbridge/internal/tracing"
)

// traceBot is a bot's messaging endpoint (botframework.md: the Connector POSTs each activity to
// it, and a 200 acknowledges it) that keeps the traceparent header and the body of each message.
type traceBot struct {
	mu   sync.Mutex
	msgs []botCall
}

type botCall struct{ traceparent, body string }

func (b *traceBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var a struct{ Type string }
	_ = json.Unmarshal(body, &a)
	if a.Type == "message" {
		b.mu.Lock()
		b.msgs = append(b.msgs, botCall{traceparent: r.Header.Get("traceparent"), body: string(body)})
		b.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (b *traceBot) calls() []botCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]botCall(nil), b.msgs...)
}

// TestTraceFollowsAMessageToTheBot: a customer's POST with a traceparent reaches the bot over
// the Connector path with the same trace id, through the store (the delivery's span is the child
// of the POST's, from the trace context kept with the record); the spans are named after routes,
// the log lines of the request and of the delivery carry the trace id, and the activity the
// bot gets holds no trace context.
func TestTraceFollowsAMessageToTheBot(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	restore := tracing.Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(restore)

	bot := &traceBot{}
	botSrv := httptest.NewServer(bot)
	t.Cleanup(botSrv.Close)
	const secret = "trace-test-secret-0123456789abcdef"
	cfg := app.Defaults()
	cfg.Store = "memory"
	cfg.Escalation.Target = "none"
	app.SectionOf[directline.Section](&cfg, "directline").Secret = secret
	app.SectionOf[botframework.Section](&cfg, "bot").BotEndpoint = botSrv.URL + "/api/messages"
	logs := &testutil.Buffer{}
	a := apptest.Serve(t, cfg, zerolog.New(logs).Level(zerolog.DebugLevel))
	base := a.Config().PublicURL + "/v3/directline"

	var conv struct{ ConversationID string }
	postJSON(t, base+"/conversations", secret, "", `{}`, &conv)
	require.NotEmpty(t, conv.ConversationID)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parent = "00f067aa0ba902b7"
	var posted struct{ ID string }
	postJSON(t, base+"/conversations/"+conv.ConversationID+"/activities", secret, "00-"+traceID+"-"+parent+"-01",
		`{"type":"message","from":{"id":"dl_customer"},"text":"where is my order"}`, &posted)

	require.Eventually(t, func() bool { return len(bot.calls()) > 0 }, 10*time.Second, 10*time.Millisecond, "the bot gets the message")
	got := bot.calls()[0]
	require.Contains(t, got.body, "where is my order")
	parts := strings.Split(got.traceparent, "-")
	require.Len(t, parts, 4, "the bot's request carries a traceparent: %q", got.traceparent)
	require.Equal(t, traceID, parts[1], "the same trace")
	require.NotEqual(t, parent, parts[2], "the bridge's own span is the bot call's parent")
	require.NotContains(t, got.body, traceID, "the trace context is not activity content")

	// The spans: the POST's server span (the child of the customer's traceparent, named after
	// its route), the delivery (the POST span's child), and the call to the bot.
	var server, deliver, client sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		for _, s := range rec.Ended() {
			switch {
			case s.SpanKind() == trace.SpanKindServer && s.Name() == "POST /v3/directline/conversations/{id}/activities":
				server = s
			case s.Name() == "deliver botframework" && s.SpanContext().TraceID().String() == traceID:
				deliver = s
			case s.SpanKind() == trace.SpanKindClient && s.SpanContext().TraceID().String() == traceID:
				client = s
			}
		}
		return server != nil && deliver != nil && client != nil
	}, 5*time.Second, 10*time.Millisecond, "server, delivery and client spans")
	require.Equal(t, traceID, server.SpanContext().TraceID().String())
	require.Equal(t, parent, server.Parent().SpanID().String())
	require.Equal(t, server.SpanContext().SpanID(), deliver.Parent().SpanID(), "the delivery continues the POST's trace, through the store")
	require.Equal(t, deliver.SpanContext().SpanID(), client.Parent().SpanID())
	require.Equal(t, client.SpanContext().SpanID().String(), parts[2], "the bot saw the client span")
	for _, s := range rec.Ended() {
		require.NotContains(t, s.Name(), conv.ConversationID, "span names are routes, never raw paths")
	}

	// The log lines of the request (the Hub's "received") and of the delivery carry the trace id.
	lines := linesWith(logs.String(), `"trace_id":"`+traceID+`"`)
	require.Contains(t, lines, "received")
	require.Contains(t, lines, "delivery attempt")
	require.NotContains(t, logs.String(), "where is my order", "message text is never logged")
}

// TestTraceReachesBotbuilderBot: the same with a real botbuilder bot (CloudAdapter, anonymous),
// which prints the traceparent of each activity it is sent; its echo comes back to the customer.
func TestTraceReachesBotbuilderBot(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	restore := tracing.Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(restore)
	dir := testutil.InteropDir(t)
	bot := testutil.StartNode(t, dir, "bots/echo-bot.js", []string{"PORT=0", "MicrosoftAppId=", "MicrosoftAppPassword=", "LOG_TRACEPARENT=1", "EXIT_ON_STDIN_END=1"})
	botURL := "http://127.0.0.1:" + bot.Listening(t, 30*time.Second) + "/api/messages"

	const secret = "trace-test-secret-0123456789abcdef"
	cfg := app.Defaults()
	cfg.Store = "memory"
	cfg.Escalation.Target = "none"
	app.SectionOf[directline.Section](&cfg, "directline").Secret = secret
	app.SectionOf[botframework.Section](&cfg, "bot").BotEndpoint = botURL
	a := apptest.Serve(t, cfg, apptest.Log(t, zerolog.WarnLevel))
	base := a.Config().PublicURL + "/v3/directline"
	var conv struct{ ConversationID string }
	postJSON(t, base+"/conversations", secret, "", `{}`, &conv)

	const traceID = "0af7651916cd43dd8448eb211c80319c"
	var posted struct{ ID string }
	postJSON(t, base+"/conversations/"+conv.ConversationID+"/activities", secret, "00-"+traceID+"-b7ad6b7169203331-01",
		`{"type":"message","from":{"id":"dl_customer"},"text":"hello"}`, &posted)
	m := bot.Next(t, 30*time.Second, func(m map[string]any) bool { return m["type"] == "message" })
	require.Regexp(t, `^00-`+traceID+`-[0-9a-f]{16}-01$`, m["traceparent"], "the bot gets the customer's trace")

	require.Eventually(t, func() bool {
		var got struct{ Activities []struct{ Text string } }
		getJSON(t, base+"/conversations/"+conv.ConversationID+"/activities", secret, &got)
		for _, a := range got.Activities {
			if a.Text == "echo: hello" {
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "the bot's echo comes back")
}

// TestTracingOffCostsNothing: without the OpenTelemetry environment, tracing stays off — the
// handler and transports pass straight through and nothing is carried with the records.
func TestTracingOffCostsNothing(t *testing.T) {
	stop, err := tracing.Start(context.Background(), func(string) string { return "" })
	require.NoError(t, err)
	require.NoError(t, stop(context.Background()))
	require.False(t, tracing.Enabled())
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	require.True(t, sc.IsValid())
	require.Empty(t, tracing.Carry(trace.ContextWithSpanContext(context.Background(), sc)), "off, nothing is stored with the records")
	// Off, the handler hands the request and the writer on as they came: no span, no wrapper.
	req, w := httptest.NewRequest("GET", "/x", nil), httptest.NewRecorder()
	var gotReq *http.Request
	var gotW http.ResponseWriter
	tracing.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { gotReq, gotW = r, w })).ServeHTTP(w, req)
	require.Same(t, req, gotReq)
	require.Same(t, w, gotW)
}

func postJSON(t *testing.T, url, secret, traceparent, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, "%s: %s", url, b)
	require.NoError(t, json.Unmarshal(b, out), string(b))
}

func getJSON(t *testing.T, url, secret string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", url, b)
	require.NoError(t, json.Unmarshal(b, out), string(b))
}

// linesWith returns the messages of the JSON log lines that contain s.
func linesWith(logs, s string) []string {
	var msgs []string
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, s) {
			continue
		}
		var e struct{ Message string }
		if json.Unmarshal([]byte(l), &e) == nil {
			msgs = append(msgs, e.Message)
		}
	}
	return msgs
}
