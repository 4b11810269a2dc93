package app_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
)

// production loads a YAML body and env over the production registry's defaults.
func production(t *testing.T, body string, env map[string]string) app.Config {
	t.Helper()
	cfg := app.Defaults()
	cfg.Store = "memory"
	p := filepath.Join(t.TempDir(), "bridge.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	require.NoError(t, cfg.LoadFile(p))
	require.NoError(t, cfg.ApplyEnv(func(k string) string { return env[k] }))
	cfg.Finish()
	return cfg
}

func TestEscalationTarget(t *testing.T) {
	tests := []struct {
		name, body string
		env        map[string]string
		want, err  string
	}{
		{name: "the desk while the sandbox is on", want: "desk"},
		{name: "none once the sandbox is off", body: "sandbox: {disabled: true}\n", want: "none"},
		{name: "none by choice", env: map[string]string{"BRIDGE_ESCALATION_TARGET": "none"}, want: "none"},
		{name: "the desk when it is off", body: "sandbox: {disabled: true}\nescalation: {target: desk}\n", err: `escalation.target "desk": that contact center is off in the sandbox: section`},
		{name: "unknown", env: map[string]string{"BRIDGE_ESCALATION_TARGET": "dynamics"}, err: `escalation.target "dynamics" is not one of: none, desk`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := production(t, tc.body, tc.env)
			err := cfg.Validate()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			a, err := app.New(cfg, testLog(t))
			require.NoError(t, err)
			require.Equal(t, tc.want, a.Config().Escalation.Target)
		})
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"store", "store: postgres\n", `store "postgres" must be memory, redis or sqlite`},
		{"redis store", "store: redis\n", "redis.url is required with the redis store"},
		{"redis url", "store: redis\nredis: {url: 'http://x'}\n", "redis.url is required with the redis store"},
		{"two bots", "bot:\n  endpoint: http://127.0.0.1:1/api/messages\n  directline: {secret: s}\n", "bot: set bot (botframework) or bot.directline (hostedbot), not both"},
		{"secret", "directline: {secret: short}\n", "directline.secret must have at least 16 characters"},
		{"omnichannel", "omnichannel: {enabled: true}\n", "omnichannel.app_id (BRIDGE_OMNICHANNEL_APP_ID) is required"},
		{"hosted bot", "bot:\n  directline: {secret: s, mode: carrier-pigeon}\n", `mode "carrier-pigeon" is not auto, websocket or polling`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := production(t, tc.body, nil)
			require.ErrorContains(t, cfg.Validate(), tc.want)
		})
	}
}

func TestEnvNames(t *testing.T) {
	cfg := app.Defaults()
	names := cfg.EnvNames()
	for _, want := range []string{
		"BRIDGE_LISTEN", "BRIDGE_PUBLIC_URL", "BRIDGE_LOG_LEVEL", "BRIDGE_DATA_DIR", "BRIDGE_ESCALATION_TARGET",
		"BRIDGE_DIRECTLINE_SECRET", "BRIDGE_BOT_ENDPOINT", "BRIDGE_BOT_APP_ID", "BRIDGE_BOT_APP_PASSWORD",
		"BRIDGE_BOT_DIRECTLINE_SECRET", "BRIDGE_OMNICHANNEL_APP_ID", "BRIDGE_OMNICHANNEL_APP_PASSWORD",
		"BRIDGE_SANDBOX_ROUTING", "BRIDGE_SANDBOX_BOT_SCRIPT", "BRIDGE_REDIS_URL",
	} {
		require.Contains(t, names, want)
	}
	sorted := slices.Sorted(slices.Values(names))
	require.Equal(t, len(sorted), len(slices.Compact(sorted)), "each variable overrides one setting")
}
