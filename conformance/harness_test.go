package conformance

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/conformance/runner"
	"github.com/bfbridge/bfbridge/conformance/scenarios"
)

// loadScenarios parses every scenario file of conformance/scenarios.
func loadScenarios(t *testing.T) []*runner.Scenario {
	t.Helper()
	all, err := runner.Load(scenarios.FS)
	require.NoError(t, err)
	require.NotEmpty(t, all)
	return all
}

// bridgeTarget starts the whole bridge (app, with its default durable store in a
// temporary directory) on a loopback port, delivering to a scripted bot on another loopback
// port, and returns it as a runner target. wrap, when not nil, wraps the bridge's handler: the
// fault tests break the bridge from outside this way.
//
// The app serves its own handler on a listener nobody calls (so that App.Serve owns the
// lifecycle: stream shutdown, store close), while its public URL is a second listener serving
// the wrapped handler.
func bridgeTarget(t *testing.T, bridgeConfig map[string]string, wrap func(http.Handler) http.Handler, wait time.Duration) *runner.Target {
	t.Helper()
	bot := runner.NewScriptedBot(10 * time.Second)
	botSrv := httptest.NewServer(bot)
	t.Cleanup(botSrv.Close)

	public, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	idle, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := app.Defaults()
	cfg.Listen = public.Addr().String()
	cfg.DataDir = t.TempDir()
	dl := app.SectionOf[directline.Section](&cfg, "directline")
	dl.Secret = "conformance-secret-0123456789"
	app.SectionOf[botframework.Section](&cfg, "bot").BotEndpoint = botSrv.URL + "/api/messages"
	cfg.ShutdownTimeout = 5 * time.Second
	for k, v := range bridgeConfig {
		applyBridgeConfig(t, &cfg, k, v)
	}
	a, err := app.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, idle) }()
	h := a.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(public) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		require.NoError(t, srv.Shutdown(sctx))
		<-done
		cancel()
		select {
		case err := <-served:
			require.NoError(t, err)
		case <-sctx.Done():
			t.Error("the bridge did not shut down")
		}
	})
	return &runner.Target{
		URL: a.Config().PublicURL + "/v3/directline", Secret: dl.Secret, Bot: bot, InProcess: true,
		Timeout: 10 * time.Second, Wait: wait,
	}
}

// applyBridgeConfig sets one bridge-config key of a scenario on the bridge's configuration.
func applyBridgeConfig(t *testing.T, cfg *app.Config, key, value string) {
	t.Helper()
	duration := func() time.Duration {
		d, err := time.ParseDuration(value)
		require.NoError(t, err, "bridge-config %s=%s", key, value)
		return d
	}
	dl := app.SectionOf[directline.Section](cfg, "directline")
	switch key {
	case "token_ttl":
		dl.TokenTTL = duration()
	case "keep_alive":
		dl.KeepAlive = duration()
	case "bot_timeout":
		cfg.Bot.Timeout = duration()
	case "rate_per_conversation":
		f, err := strconv.ParseFloat(value, 64)
		require.NoError(t, err)
		dl.RatePerConversation = f
	default:
		t.Fatalf("unknown bridge-config key %q", key)
	}
}

// configKey names a scenario's bridge-config, so that scenarios with the same share a bridge.
func configKey(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// runInProcess runs the scenarios against bridges set up as each asks (one bridge per distinct
// bridge-config), wrapped by wrap, calling each (when not nil) as each result is known. wait is
// how long expected output may take: the bridge answers within its turn, so a failing
// expectation need not wait long.
func runInProcess(t *testing.T, all []*runner.Scenario, wrap func(http.Handler) http.Handler, wait time.Duration, each func(*runner.Scenario, runner.Result)) *runner.Report {
	t.Helper()
	targets := map[string]*runner.Target{}
	rep := &runner.Report{Target: "bfbridge (in process)"}
	for _, s := range all {
		key := configKey(s.BridgeConfig)
		target, ok := targets[key]
		if !ok {
			target = bridgeTarget(t, s.BridgeConfig, wrap, wait)
			targets[key] = target
		}
		if rep.Domain == "" {
			rep.Domain, _ = target.Domain(context.Background())
		}
		res := runner.RunScenario(context.Background(), target, s)
		rep.Results = append(rep.Results, res)
		if each != nil {
			each(s, res)
		}
	}
	return rep
}
