package app_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
)

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
		{name: "unknown", env: map[string]string{"BRIDGE_ESCALATION_TARGET": "zendesk"}, err: `escalation.target "zendesk" is not one of: none, desk`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := apptest.Load(t, tc.body, tc.env)
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
			cfg := apptest.Load(t, tc.body, nil)
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

// Anonymous bot mode and the sandbox contact center leave routes open without credentials:
// the bridge refuses to listen beyond loopback with them unless told to accept the risk.
func TestUnauthenticatedChannelsStayOnLoopback(t *testing.T) {
	const anonymous = "bot:\n  endpoint: http://127.0.0.1:3978/api/messages\nsandbox:\n  disabled: true\n"
	const authenticated = "bot:\n  endpoint: http://127.0.0.1:3978/api/messages\n  app_id: an-app\n  app_password: a-password\nsandbox:\n  disabled: true\n"
	allow := map[string]string{"BRIDGE_ALLOW_UNAUTHENTICATED_PUBLIC": "true"}
	tests := []struct {
		name, listen, body string
		env                map[string]string
		want               string // "" for no error
	}{
		{"anonymous bot on every interface", "0.0.0.0:8080", anonymous, nil, "anonymous bot mode"},
		{"anonymous bot on an empty host", ":8080", anonymous, nil, "anonymous bot mode"},
		{"anonymous bot on a public address", "192.0.2.1:8080", anonymous, nil, "anonymous bot mode"},
		{"anonymous bot, allowed", "0.0.0.0:8080", anonymous, allow, ""},
		{"anonymous bot on loopback", "127.0.0.1:8080", anonymous, nil, ""},
		{"anonymous bot on localhost", "localhost:8080", anonymous, nil, ""},
		{"anonymous bot on IPv6 loopback", "[::1]:8080", anonymous, nil, ""},
		{"authenticated bot on every interface", "0.0.0.0:8080", authenticated, nil, ""},
		{"sandbox on every interface", "0.0.0.0:8080", "", nil, "sandbox contact center"},
		{"sandbox, allowed in the file", "0.0.0.0:8080", "allow_unauthenticated_public: true\n", nil, ""},
		{"sandbox on loopback", "127.0.0.1:8080", "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := apptest.Load(t, "listen: \""+tt.listen+"\"\n"+tt.body, tt.env)
			err := cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "is not a loopback address")
			require.ErrorContains(t, err, "--allow-unauthenticated-public")
		})
	}
}
