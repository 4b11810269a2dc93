package salesforce

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// TestTokenBudget: token requests past the per-org budget wait for it, none fails; the
// budget's burst is a tenth of a minute's.
func TestTokenBudget(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write([]byte(`{"accessToken":"t","lastEventId":"0"}`))
	}))
	defer srv.Close()
	cfg := validConfig()
	cfg.SCRTURL, cfg.RequestsPerMinute = srv.URL, 600 // 10 a second, a burst of 60
	ch, err := New(cfg, nil, "", zerolog.Nop())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 70)
	for range 70 {
		wg.Go(func() {
			_, err := ch.accessToken(ctx, false, "")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "queued, not failed")
	}
	require.Equal(t, int32(70), n.Load())
	require.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "the 10 past the burst waited for the budget")
}
