package app_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// A bridge on Redis: /readyz and the Direct Line API answer 503 with Retry-After while Redis is
// down (never a wrong answer), and the bridge recovers by itself when Redis is back; what was
// accepted before the outage is still there.
func TestRedisOutage(t *testing.T) {
	rp := testutil.StartRedis(t)
	cfg := app.Defaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.Store, cfg.DataDir, cfg.Listen = "redis", t.TempDir(), ln.Addr().String()
	cfg.Redis.URL = "redis://" + rp.Addr + "/0"
	const secret = "readyz-test-secret-0123456789"
	app.SectionOf[directline.Section](&cfg, "directline").Secret = secret
	a, err := app.New(cfg, testLog(t))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	srv := struct{ URL string }{a.Config().PublicURL}

	require.Contains(t, get(t, srv.URL+"/readyz", http.StatusOK), `"status":"ready"`)
	post := func(path string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v3/directline"+path, strings.NewReader(""))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	resp := post("/conversations")
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	rp.Kill()
	status, body := readyz(t, srv.URL)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "store", body["unavailable"], "the answer names the failing check")
	resp = post("/conversations")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "2", resp.Header.Get("Retry-After"))

	rp.Start(t)
	require.Eventually(t, func() bool {
		resp, err := http.Get(srv.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, 15*time.Second, 100*time.Millisecond)
	require.Equal(t, http.StatusCreated, post("/conversations").StatusCode)
}
