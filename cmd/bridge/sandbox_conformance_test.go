package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
	"github.com/bfbridge/bfbridge/conformance/runner"
)

// TestConformanceAgainstDefaultSandbox: `bridge conformance` with nothing but --target and
// --secret, against the bridge as `go run ./cmd/bridge` starts it (the sandbox bot, which greets
// on start; the generated secret), fails no scenario. The scenarios that script the bot are
// unsupported there, with the reason; every other one passes.
func TestConformanceAgainstDefaultSandbox(t *testing.T) {
	a := apptest.Serve(t, app.Defaults(), apptest.Log(t, zerolog.WarnLevel))
	secret := keptSecret(t, a)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"conformance", "--target", a.Config().PublicURL + "/v3/directline", "--secret", secret, "--json"}, envOf(nil), &stdout, &stderr)
	require.NoError(t, err, stderr.String())

	var rep struct {
		Results []runner.Result `json:"results"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	passed := map[string]bool{}
	for _, r := range rep.Results {
		require.NotEqual(t, runner.Fail, r.Status, "%s: %s", r.Scenario, r.Reason)
		if r.Status == runner.Unsupported {
			require.Regexp(t, `needs the scripted bot|needs the in-process bridge|the token lives`, r.Reason, r.Scenario)
		}
		passed[r.Scenario] = r.Status == runner.Pass
	}
	require.True(t, passed["dl06-keepalive"], "the keep-alive scenario ran, against a bot that greets")
	require.True(t, passed["dl01-prefix-and-cors"])
}

// TestConformanceCORSEchoingServer: a Direct Line server whose preflight answer allows exactly the
// headers the browser asked for (as browsers accept) passes the CORS scenario; one that leaves out
// a header that was asked for fails it.
func TestConformanceCORSEchoingServer(t *testing.T) {
	a := apptest.Serve(t, app.Defaults(), apptest.Log(t, zerolog.WarnLevel))
	secret := keptSecret(t, a)
	upstream, err := url.Parse(a.Config().PublicURL)
	require.NoError(t, err)
	front := func(allow func(asked string) string) string {
		proxy := httputil.NewSingleHostReverseProxy(upstream)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodOptions {
				proxy.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Access-Control-Allow-Origin", "*")
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", allow(r.Header.Get("Access-Control-Request-Headers")))
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/v3/directline"
	}
	conform := func(target string) (string, error) {
		var stdout bytes.Buffer
		err := run(context.Background(), []string{"conformance", "--target", target, "--secret", secret, "--run", "^dl01"}, envOf(nil), &stdout, io.Discard)
		return stdout.String(), err
	}

	out, err := conform(front(func(asked string) string { return asked }))
	require.NoError(t, err, out)
	require.Contains(t, out, "PASS dl01-prefix-and-cors")

	out, err = conform(front(func(string) string { return "authorization, content-type" })) // x-ms-bot-agent asked, not allowed
	require.ErrorIs(t, err, errConformance, out)
	require.Contains(t, out, "FAIL dl01-prefix-and-cors")
	require.Contains(t, out, "x-ms-bot-agent")
}

// keptSecret returns the Direct Line secret the bridge generated and kept in its data directory.
func keptSecret(t *testing.T, a *app.App) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.Config().DataDir, "directline-secret"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}
