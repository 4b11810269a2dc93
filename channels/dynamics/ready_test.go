package dynamics_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/dynamics"
)

// The bridge's /readyz checks the Dynamics Messaging API and its token endpoint (the fake
// Messaging API, fake_test.go): while the fake is stopped /readyz answers 503 naming
// "dynamics"; when the fake is back on the same address, 200 again.
func TestReadyzFollowsDynamics(t *testing.T) {
	fake := dynamics.NewFakeMessaging(t)
	cfg := app.Defaults()
	cfg.Store, cfg.Escalation.Target, cfg.ReadyCache = "memory", dynamics.Name, 50*time.Millisecond
	app.SectionOf[directline.Section](&cfg, "directline").Secret = dlSecret
	*app.SectionOf[dynamics.Config](&cfg, "dynamics") = fake.Config()
	a := apptest.Serve(t, cfg, apptest.Log(t, zerolog.ErrorLevel))
	admin := httptest.NewServer(a.AdminHandler())
	t.Cleanup(admin.Close)

	ready := func() (int, map[string]any) {
		resp, err := http.Get(admin.URL + "/readyz")
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}
	status, body := ready()
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Equal(t, map[string]any{"store": "ok", "dynamics": "ok", "dynamics_token": "ok"}, body["checks"])

	addr, handler := fake.Srv.Listener.Addr().String(), fake.Srv.Config.Handler
	fake.Srv.Close()
	require.Eventually(t, func() bool {
		status, body := ready()
		return status == http.StatusServiceUnavailable && body["unavailable"] == "dynamics"
	}, 5*time.Second, 20*time.Millisecond)

	var ln net.Listener
	require.Eventually(t, func() bool { // the same fake, back on its address
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	back := &httptest.Server{Listener: ln, Config: &http.Server{Handler: handler}}
	back.Start()
	t.Cleanup(back.Close)
	require.Eventually(t, func() bool { status, _ := ready(); return status == http.StatusOK }, 5*time.Second, 20*time.Millisecond)
}
