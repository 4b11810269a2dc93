package dynamics_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
	"github.com/bfbridge/bfbridge/channels/dynamics"
)

const validSection = `dynamics:
  enabled: true
  base_url: https://m-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee.us.omnichannelengagementhub.com
  organization_id: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
  channel_id: 12345678-90ab-cdef-1234-567890abcdef
  tenant_id: 11111111-2222-3333-4444-555555555555
  client_id: 99999999-8888-7777-6666-555555555555
  scope: https://aaaaaaaabbbbccccddddeeeeeeeeeeee-c.crm.dynamics.com/.default
`

func TestSectionAndTarget(t *testing.T) {
	secret := map[string]string{"BRIDGE_DYNAMICS_CLIENT_SECRET": "s3cr3t-value-from-env"}
	t.Run("valid, the secret from the environment", func(t *testing.T) {
		cfg := apptest.Load(t, validSection+"escalation: {target: dynamics}\n", secret)
		require.NoError(t, cfg.Validate())
		sec := app.SectionOf[dynamics.Config](&cfg, "dynamics")
		require.Equal(t, "s3cr3t-value-from-env", sec.ClientSecret)
		a, err := app.New(cfg, zerolog.Nop())
		require.NoError(t, err)
		require.Equal(t, "dynamics", a.Config().Escalation.Target)
	})
	t.Run("the desk stays the default target", func(t *testing.T) {
		cfg := apptest.Load(t, validSection, secret)
		require.NoError(t, cfg.Validate())
		a, err := app.New(cfg, zerolog.Nop())
		require.NoError(t, err)
		require.Equal(t, "desk", a.Config().Escalation.Target)
	})
	for _, tc := range []struct{ name, body, want string }{
		{"no secret", validSection, "BRIDGE_DYNAMICS_CLIENT_SECRET"},
		{"missing key", "dynamics: {enabled: true}\n", "dynamics.base_url is required when dynamics is enabled"},
		{"missing scope", "dynamics: {enabled: true}\n", "dynamics.scope is required"},
		{"not a guid", validSection + "  channel_id_x: 1\n", `unknown key "channel_id_x" in dynamics: (did you mean "channel_id"?)`},
		{"bad org", "dynamics: {enabled: true, organization_id: org1}\n", `dynamics.organization_id "org1" is not a GUID`},
		{"target off", "escalation: {target: dynamics}\n", `escalation.target "dynamics": that contact center is off in the dynamics: section`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := secret
			if tc.name == "no secret" {
				env = nil
			}
			cfg, err := loadErr(t, tc.body, env)
			if err == nil {
				err = cfg.Validate()
			}
			require.ErrorContains(t, err, tc.want)
			if env != nil {
				require.NotContains(t, err.Error(), "s3cr3t-value-from-env", "never echoes the secret")
			}
		})
	}
}

func loadErr(t *testing.T, body string, env map[string]string) (app.Config, error) {
	t.Helper()
	cfg := app.Defaults()
	cfg.Store = "memory"
	p := filepath.Join(t.TempDir(), "bridge.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	if err := cfg.LoadFile(p); err != nil {
		return cfg, err
	}
	require.NoError(t, cfg.ApplyEnv(func(k string) string { return env[k] }))
	cfg.Finish()
	return cfg, nil
}
