package tracing

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
	}{
		{"nothing set", nil, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{"sdk disabled false", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "false"}, true},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.on, FromEnv(func(k string) string { return tc.env[k] }))
		})
	}
	require.Equal(t, "bfbridge", ServiceName(func(string) string { return "" }))
	require.Equal(t, "edge", ServiceName(func(k string) string { return map[string]string{"OTEL_SERVICE_NAME": "edge"}[k] }))
}

// TestStartExportsOverOTLP: with the endpoint set, spans reach an OTLP/HTTP receiver (its
// POST /v1/traces) when the bridge flushes at shutdown; afterwards tracing is off again.
func TestStartExportsOverOTLP(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	stop, err := Start(context.Background(), os.Getenv)
	require.NoError(t, err)
	require.True(t, Enabled())
	ctx, d := StartDelivery(context.Background(), "", "botframework", "c1", "c1|0000000", 1)
	require.NotEmpty(t, Carry(ctx))
	d.End(nil)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, stop(sctx))
	require.False(t, Enabled())
	require.Positive(t, posts.Load(), "the span was exported")
}

func TestCarryResumes(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	restore := Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	defer restore()
	s := current.Load()
	in := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\ncongo=t61rcWkgMzE"
	ctx := resume(context.Background(), s, in)
	require.Equal(t, in, Carry(ctx), "traceparent and tracestate survive the store")
	ctx, d := StartDelivery(context.Background(), in, "omnichannel", "c", "c|0000001", 2)
	d.End(io.ErrUnexpectedEOF)
	ended := rec.Ended()
	require.Len(t, ended, 1)
	require.Equal(t, "deliver omnichannel", ended[0].Name())
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", ended[0].SpanContext().TraceID().String())
	require.Equal(t, "b7ad6b7169203331", ended[0].Parent().SpanID().String())
	require.Equal(t, "Error", ended[0].Status().Code.String())
	require.NotEmpty(t, Carry(ctx))

	var members []string
	for i := range 30 {
		members = append(members, fmt.Sprintf("k%02d=%s", i, strings.Repeat("v", 20)))
	}
	ts := strings.Join(members, ",")
	require.Greater(t, len(ts), 512)
	got := Carry(resume(context.Background(), s, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n"+ts[:500]))
	require.Contains(t, got, "\nk00=", "a tracestate of 500 characters is kept")
	long := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n" + ts
	require.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Carry(resume(context.Background(), s, long)),
		"a tracestate beyond 512 characters is not stored")

	ctx = resume(context.Background(), s, "garbage")
	require.Empty(t, Carry(ctx), "an invalid carried context starts nothing")
}

func TestSpanName(t *testing.T) {
	require.Equal(t, "POST /v3/conversations/{id}/activities", spanName("POST", "POST /v3/conversations/{id}/activities"))
	require.Equal(t, "GET /healthz", spanName("GET", "/healthz"))
	require.Equal(t, "/a/{b}", routeOf("POST /a/{b}"))
	require.Equal(t, "/a", routeOf("/a"))
}

// TestTransportOff: off, the transport hands the caller's request on untouched.
func TestTransportOff(t *testing.T) {
	require.False(t, Enabled())
	var got *http.Request
	rt := Transport(roundTripper(func(r *http.Request) (*http.Response, error) {
		got = r
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}))
	req := httptest.NewRequest(http.MethodPost, "http://bot.example/api/messages", nil)
	_, err := rt.RoundTrip(req)
	require.NoError(t, err)
	require.Same(t, req, got)
	require.Empty(t, got.Header.Get("traceparent"))
	require.Same(t, rt, Transport(rt), "wrapping twice is wrapping once")
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The hot path with tracing off: go test -run '^$' -bench Off ./internal/tracing (a few ns and
// no allocation each, against the bare handler's).
func BenchmarkHandlerOff(b *testing.B) {
	inner := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := Handler(inner)
	req, w := httptest.NewRequest("POST", "/x", nil), httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

func BenchmarkDeliveryOff(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, d := StartDelivery(ctx, "", "botframework", "c", "c|0000001", 1)
		d.End(nil)
		_ = Carry(c)
	}
}

// TestHandlerUpgradesWebsockets: on, the handler's writer still hijacks (Direct Line streams),
// and the span is named after the route the mux matched.
func TestHandlerUpgradesWebsockets(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	restore := Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	defer restore()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v3/directline/conversations/{id}/stream", func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte("{}"))
		_ = c.Close()
	})
	srv := httptest.NewServer(Handler(mux))
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/v3/directline/conversations/abc/stream", nil)
	require.NoError(t, err)
	_, msg, err := c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, "{}", string(msg))
	require.NoError(t, c.Close())
	require.Eventually(t, func() bool { return len(rec.Ended()) == 1 }, 5*time.Second, 10*time.Millisecond)
	s := rec.Ended()[0]
	require.Equal(t, "GET /v3/directline/conversations/{id}/stream", s.Name())
	require.NotContains(t, s.Name(), "abc")
}

// TestTransportOn: on, an outbound call gets a client span, the child of the span in its
// context, and carries it in traceparent (on a copy: the caller's request is not changed).
func TestTransportOn(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	restore := Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	defer restore()
	var seen string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("traceparent")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, d := StartDelivery(context.Background(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "dynamics", "c", "c|0000002", 1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/messages", nil)
	require.NoError(t, err)
	resp, err := Client(&http.Client{}).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	d.End(nil)
	require.Empty(t, req.Header.Get("traceparent"), "the caller's request is not changed")
	require.Regexp(t, `^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$`, seen)
	var client, deliver sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "POST":
			client = s
		case "deliver dynamics":
			deliver = s
		}
	}
	require.NotNil(t, client)
	require.NotNil(t, deliver)
	require.Equal(t, deliver.SpanContext().SpanID(), client.Parent().SpanID())
	require.Equal(t, client.SpanContext().SpanID().String(), strings.Split(seen, "-")[2])
	require.Equal(t, "Error", client.Status().Code.String(), "a 503 is an error")
}
