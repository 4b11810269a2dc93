package dlclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// scripted answers each request with the next status of a script (200 {"ok":true} once it runs
// out) and records when requests came.
type scripted struct {
	mu       sync.Mutex
	statuses []int
	retry    string
	at       []time.Time
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, time.Now())
	w.Header().Set("Content-Type", "application/json")
	if len(s.statuses) == 0 {
		_, _ = w.Write([]byte(`{"ok":true}`))
		return
	}
	st := s.statuses[0]
	s.statuses = s.statuses[1:]
	if s.retry != "" {
		w.Header().Set("Retry-After", s.retry)
	}
	w.WriteHeader(st)
	_, _ = w.Write([]byte(`{"error":{"code":"X","message":"scripted"}}`))
}

func (s *scripted) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

func TestDoRetries(t *testing.T) {
	cfg := testConfig()
	cfg.Secret, cfg.MaxRetries, cfg.Store = "s", 3, NewMemoryStore()
	c, err := New(cfg, &fakeHub{}, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	var out struct{ OK bool }

	for _, tc := range []struct {
		name       string
		statuses   []int
		idempotent bool
		calls      int
		fail       int
	}{
		{"idempotent: 500, 502, 504 then 200", []int{500, 502, 504}, true, 4, 0},
		{"idempotent: gives up after MaxRetries", []int{503, 503, 503, 503, 503}, true, 4, 503},
		{"idempotent: 4xx is final", []int{400}, true, 1, 400},
		{"POST: 500 is not retried", []int{500}, false, 1, 500},
		{"POST: 502 is not retried", []int{502}, false, 1, 502},
		{"POST: 504 is not retried", []int{504}, false, 1, 504},
		{"POST: 503 was not processed and is retried", []int{503}, false, 2, 0},
		{"POST: 429 is retried", []int{429, 429}, false, 3, 0},
		{"POST: 403 is final", []int{403}, false, 1, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &scripted{statuses: tc.statuses}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			err := c.do(context.Background(), call{op: "test", method: http.MethodPost, url: ts.URL, idempotent: tc.idempotent}, &out)
			require.Equal(t, tc.calls, srv.calls())
			if tc.fail == 0 {
				require.NoError(t, err)
				require.True(t, out.OK)
				return
			}
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tc.fail, ae.Status)
			require.Equal(t, "X", ae.Code)
			require.Equal(t, "scripted", ae.Message)
		})
	}

	t.Run("Retry-After is honoured", func(t *testing.T) {
		srv := &scripted{statuses: []int{429}, retry: "1"}
		ts := httptest.NewServer(srv)
		defer ts.Close()
		require.NoError(t, c.do(context.Background(), call{op: "test", method: http.MethodGet, url: ts.URL}, &out))
		require.Equal(t, 2, srv.calls())
		require.GreaterOrEqual(t, srv.at[1].Sub(srv.at[0]), time.Second)
	})
	t.Run("a Retry-After past the deadline fails at once", func(t *testing.T) {
		srv := &scripted{statuses: []int{429}, retry: "30"}
		ts := httptest.NewServer(srv)
		defer ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		err := c.do(ctx, call{op: "test", method: http.MethodGet, url: ts.URL}, &out)
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 30*time.Second, ae.RetryAfter)
		require.True(t, ae.Throttled())
		require.Less(t, time.Since(start), 4*time.Second, "no wait that cannot end in time")
		require.Equal(t, 1, srv.calls())
	})
	t.Run("cancellation stops the wait", func(t *testing.T) {
		srv := &scripted{statuses: []int{429}, retry: "30"}
		ts := httptest.NewServer(srv)
		defer ts.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		require.Error(t, c.do(ctx, call{op: "test", method: http.MethodGet, url: ts.URL}, &out))
		require.Equal(t, 1, srv.calls())
	})
	t.Run("network errors are retried only when idempotent", func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls++
			mu.Unlock()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close() // the request arrived; the answer never does
			}
		}))
		defer ts.Close()
		count := func() int { mu.Lock(); defer mu.Unlock(); n := calls; calls = 0; return n }
		require.Error(t, c.do(context.Background(), call{op: "test", method: http.MethodPost, url: ts.URL, body: []byte("{}")}, &out))
		require.Equal(t, 1, count(), "a POST whose answer was lost is not sent again")
		err := c.do(context.Background(), call{op: "test", method: http.MethodGet, url: ts.URL + "/x?t=SECRET", idempotent: true}, &out)
		require.Error(t, err)
		require.GreaterOrEqual(t, count(), 1+cfg.MaxRetries, "an idempotent call is")
		require.NotContains(t, err.Error(), "SECRET", "the query is not in the error")
	})
}
