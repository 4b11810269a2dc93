package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// A nil Metrics records nothing and never panics: code built without the App needs none.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Appended("directline", "customer")
	m.Delivered("bot", DeliveryOK, time.Millisecond)
	m.WebsocketClosed("directline", "client_closed")
	m.Escalation("desk", EscalationPlaced)
	m.StoreOp("append", time.Now())
	m.PrepareStoreOps("append")
	require.Equal(t, http.DefaultTransport, m.Transport(PeerBot, nil))
	h := http.NotFoundHandler()
	require.NotNil(t, m.Middleware(h))
}

// Recording on the hot path (an append, a delivery, a store operation) allocates nothing once
// its label set has been seen.
func TestHotPathAllocatesNothing(t *testing.T) {
	m := New()
	m.Appended("directline", "customer")
	m.Delivered("botframework", DeliveryOK, time.Millisecond)
	m.StoreOp("append", time.Now())
	allocs := testing.AllocsPerRun(1000, func() {
		m.Appended("directline", "customer")
		m.Delivered("botframework", DeliveryOK, time.Millisecond)
		m.StoreOp("append", time.Now())
	})
	require.Zero(t, allocs)
	// one before, one warm-up run of AllocsPerRun, then its 1,000
	require.Equal(t, 1002.0, testutil.ToFloat64(m.appended.get([2]string{"directline", "customer"})))
}

// The middleware counts by the mux's pattern, not the path, and the status the handler gave;
// a request no route matched is "unmatched"; a websocket upgrade passes through it (Hijack)
// and counts as 101.
func TestMiddleware(t *testing.T) {
	m := New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v3/conversations/{id}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gone", http.StatusGone)
	})
	up := websocket.Upgrader{}
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err == nil {
			c.Close()
		}
	})
	srv := httptest.NewServer(m.Middleware(mux))
	defer srv.Close()
	for _, p := range []string{"/v3/conversations/a", "/v3/conversations/b", "/nowhere"} {
		resp, err := http.Get(srv.URL + p)
		require.NoError(t, err)
		resp.Body.Close()
	}
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/stream", nil)
	require.NoError(t, err)
	c.Close()

	require.Eventually(t, func() bool {
		return testutil.ToFloat64(m.inbound.get(route{"GET /stream", http.StatusSwitchingProtocols})) == 1
	}, 2*time.Second, 10*time.Millisecond)
	require.Equal(t, 2.0, testutil.ToFloat64(m.inbound.get(route{"GET /v3/conversations/{id}", http.StatusGone})))
	require.Equal(t, 1.0, testutil.ToFloat64(m.inbound.get(route{"unmatched", http.StatusNotFound})))
}

// The transport counts answers by class, failures as "error", and Retry-After delays in
// both of their forms (RFC 9110 §10.2.3), as internal/retry reads them.
func TestTransport(t *testing.T) {
	m := New()
	var status int
	var retry string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		w.WriteHeader(status)
	}))
	c := m.Client(PeerDynamics, nil)
	call := func(s int, ra string) {
		status, retry = s, ra
		resp, err := c.Get(srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
	}
	call(200, "")
	call(429, "7")
	call(503, time.Now().Add(20*time.Second).UTC().Format(http.TimeFormat))
	call(503, "soon") // unreadable: no delay
	srv.Close()
	_, err := c.Get(srv.URL)
	require.Error(t, err)

	class := func(c string) float64 { return testutil.ToFloat64(m.outbound.get([2]string{PeerDynamics, c})) }
	require.Equal(t, []float64{1, 1, 2, 1}, []float64{class("2xx"), class("4xx"), class("5xx"), class("error")})
	h := histogram(t, m, "bfbridge_outbound_retry_after_seconds")
	require.Equal(t, uint64(3), h.GetSampleCount(), "7 s, an HTTP date and an unreadable value")
	require.InDelta(t, 7+20, h.GetSampleSum(), 2)
	require.Equal(t, uint64(5), histogram(t, m, "bfbridge_outbound_request_duration_seconds").GetSampleCount())
}

// histogram returns the only series of a histogram family.
func histogram(t *testing.T, m *Metrics, name string) *dto.Histogram {
	t.Helper()
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no family %s", name)
	return nil
}

// BenchmarkRecordActivity is what the metrics add per relayed activity on the hot path: one
// append, one delivery attempt and two store operations recorded.
func BenchmarkRecordActivity(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Appended("directline", "customer")
			m.Delivered("botframework", DeliveryOK, time.Millisecond)
			m.StoreOp("append", time.Now())
			m.StoreOp("ack", time.Now())
		}
	})
}
