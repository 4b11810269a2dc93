package app_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/salesforce"
)

// origin stands in for a contact center's origin on a fixed loopback address that can go away
// and come back. /readyz only asks whether something answers there (any status below 500), as
// the real origin answers a GET on an unknown path with 404.
type origin struct {
	addr string
	srv  *http.Server
	hits atomic.Int64
}

func (o *origin) start(t *testing.T) {
	t.Helper()
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	require.Eventually(t, func() bool { // the port may linger a moment after a stop
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	o.addr = ln.Addr().String()
	o.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		http.NotFound(w, r)
	})}
	go func() { _ = o.srv.Serve(ln) }()
	t.Cleanup(func() { _ = o.srv.Close() })
}

func (o *origin) stop() { _ = o.srv.Close() }

// readyz returns /readyz's status and body.
func readyz(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	if resp.StatusCode != http.StatusOK {
		require.Equal(t, "2", resp.Header.Get("Retry-After"))
	}
	return resp.StatusCode, body
}

// salesforceBridge serves a bridge escalating to Salesforce at cc, and its admin handler.
func salesforceBridge(t *testing.T, cc *origin, cache time.Duration) (public, admin string) {
	t.Helper()
	cfg := app.Defaults()
	cfg.Store = "sqlite"
	app.SectionOf[directline.Section](&cfg, "directline").Secret = "readyz-test-secret-0123456789"
	sf := app.SectionOf[salesforce.Config](&cfg, "salesforce")
	sf.Enabled, sf.SCRTURL, sf.OrgID, sf.ESDeveloperName = true, "http://"+cc.addr, "00D000000000001", "Web"
	cfg.Escalation.Target = salesforce.Name
	cfg.ReadyCache = cache
	a := apptest.Serve(t, cfg, testLog(t))
	srv := httptest.NewServer(a.AdminHandler())
	t.Cleanup(srv.Close)
	return a.Config().PublicURL, srv.URL
}

// /readyz's check of a contact center is cached (ready_cache): a probe storm on both
// listeners reaches the contact center once.
func TestReadyzCached(t *testing.T) {
	var cc origin
	cc.start(t)
	public, admin := salesforceBridge(t, &cc, time.Hour)
	for range 20 {
		for _, base := range []string{public, admin} {
			status, body := readyz(t, base)
			require.Equal(t, http.StatusOK, status, "%v", body)
			require.Equal(t, map[string]any{"store": "ok", "salesforce": "ok"}, body["checks"])
		}
	}
	require.Equal(t, int64(1), cc.hits.Load(), "the contact center's check is cached")
}

// /readyz, on both listeners, checks that the configured contact center answers: 503 naming
// it while its origin is gone, 200 again when it is back.
func TestReadyzContactCenter(t *testing.T) {
	var cc origin
	cc.start(t)
	public, admin := salesforceBridge(t, &cc, 50*time.Millisecond)
	status, body := readyz(t, admin)
	require.Equal(t, http.StatusOK, status, "%v", body)

	cc.stop()
	require.Eventually(t, func() bool {
		status, body := readyz(t, admin)
		return status == http.StatusServiceUnavailable && body["unavailable"] == "salesforce" && body["status"] == "unavailable"
	}, 5*time.Second, 20*time.Millisecond)
	status, body = readyz(t, public)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "salesforce", body["unavailable"])
	require.Contains(t, body["checks"].(map[string]any)["salesforce"], "unreachable")

	cc.start(t)
	require.Eventually(t, func() bool {
		status, _ := readyz(t, public)
		return status == http.StatusOK
	}, 5*time.Second, 20*time.Millisecond)
	status, _ = readyz(t, admin)
	require.Equal(t, http.StatusOK, status)
}

// /readyz writes to the store: a SQLite store that no longer takes writes (here: closed) makes
// it 503 naming "store". (TestRedisOutage shows a store going away and coming back; the memory
// store always takes writes.)
func TestReadyzStoreWrite(t *testing.T) {
	for _, store := range []string{"sqlite"} {
		t.Run(store, func(t *testing.T) {
			cfg := app.Defaults()
			cfg.Store, cfg.DataDir = store, t.TempDir()
			app.SectionOf[directline.Section](&cfg, "directline").Secret = "readyz-test-secret-0123456789"
			a, err := app.New(cfg, testLog(t))
			require.NoError(t, err)
			srv := httptest.NewServer(a.AdminHandler())
			t.Cleanup(srv.Close)
			status, body := readyz(t, srv.URL)
			require.Equal(t, http.StatusOK, status, "%v", body)
			require.NoError(t, a.Store.Close())
			status, body = readyz(t, srv.URL)
			require.Equal(t, http.StatusServiceUnavailable, status)
			require.Equal(t, "store", body["unavailable"])
			require.NoError(t, a.Close(t.Context()))
		})
	}
}
