package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/channels/omnichannel"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// t1Base is a T1 configuration without its Omnichannel credentials: a self-hosted bot, the
// sandbox off.
const t1Base = "sandbox:\n  disabled: true\nbot:\n  endpoint: http://127.0.0.1:3978/api/messages\n  app_id: bot-app\n  app_password: bot-password\n"

// TestT1ConfigErrors: what an operator setting up T1 gets wrong is refused with the setting and
// its variable named, by start-up and by config check alike; never a bridge silently running
// without Omnichannel.
func TestT1ConfigErrors(t *testing.T) {
	const appID = "00000000-0000-0000-0000-000000000001"
	tests := []struct {
		name, body string
		env        map[string]string
		want       string // "" for valid
	}{
		{"no app password", "omnichannel:\n  enabled: true\n", map[string]string{"BRIDGE_OMNICHANNEL_APP_ID": appID},
			"omnichannel: the app password is missing: set BRIDGE_OMNICHANNEL_APP_PASSWORD to the client secret of that app"},
		{"no app id", "omnichannel:\n  enabled: true\n", map[string]string{"BRIDGE_OMNICHANNEL_APP_PASSWORD": "pw"},
			"omnichannel.app_id (BRIDGE_OMNICHANNEL_APP_ID) is required when omnichannel is enabled"},
		{"an app id in the file, not enabled", "omnichannel:\n  app_id: " + appID + "\n", map[string]string{"BRIDGE_OMNICHANNEL_APP_PASSWORD": "pw"},
			"omnichannel: an app id or credential is set but the channel is off; set omnichannel.enabled: true (BRIDGE_OMNICHANNEL_ENABLED=true)"},
		{"an app id in the environment, not enabled", "", map[string]string{"BRIDGE_OMNICHANNEL_APP_ID": appID},
			"omnichannel: an app id or credential is set but the channel is off"},
		{"a password and a certificate", "omnichannel:\n  enabled: true\n  certificate_thumbprint: ab\n  certificate_key_file: k.pem\n", map[string]string{"BRIDGE_OMNICHANNEL_APP_ID": appID, "BRIDGE_OMNICHANNEL_APP_PASSWORD": "pw"},
			"set either the app password (BRIDGE_OMNICHANNEL_APP_PASSWORD) or a certificate"},
		{"half a certificate", "omnichannel:\n  enabled: true\n  certificate_thumbprint: ab\n", map[string]string{"BRIDGE_OMNICHANNEL_APP_ID": appID},
			"a certificate needs both certificate_thumbprint and certificate_key_file"},
		{"the sandbox without Direct Line", "directline:\n  disabled: true\nsandbox: {}\n", nil,
			"sandbox: the desk channel needs the directline channel, which is off in the directline: section"},
		{"enabled from the environment", "", map[string]string{"BRIDGE_OMNICHANNEL_ENABLED": "true", "BRIDGE_OMNICHANNEL_APP_ID": appID, "BRIDGE_OMNICHANNEL_APP_PASSWORD": "pw"}, ""},
		{"number variables in the file", "omnichannel:\n  enabled: true\n  number_variables: [Age, Priority]\n", map[string]string{"BRIDGE_OMNICHANNEL_APP_ID": appID, "BRIDGE_OMNICHANNEL_APP_PASSWORD": "pw"}, ""},
		{"Direct Line off in T1", "directline:\n  disabled: true\nomnichannel:\n  enabled: true\n", map[string]string{"BRIDGE_OMNICHANNEL_APP_ID": appID, "BRIDGE_OMNICHANNEL_APP_PASSWORD": "pw"}, ""},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "t1.yaml")
			body := t1Base + tc.body
			if strings.Contains(tc.body, "sandbox:") { // the sandbox on: none of T1's
				body = tc.body
			}
			require.NoError(t, os.WriteFile(file, []byte(body), 0o600))
			err := run(context.Background(), []string{"config", "check", file}, envOf(tc.env), io.Discard, io.Discard)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want, "config check")
			err = run(context.Background(), []string{"--config", file, "--listen", "127.0.0.1:0", "--admin-listen", "", "--data-dir", t.TempDir()}, envOf(tc.env), io.Discard, io.Discard)
			require.ErrorContains(t, err, tc.want, "start-up")
			require.NotContains(t, err.Error(), "pw\"", "no secret in the message")
		})
	}
}

// The number variables declared in YAML reach the Omnichannel channel's configuration.
func TestT1NumberVariables(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t1.yaml")
	require.NoError(t, os.WriteFile(file, []byte(t1Base+"omnichannel:\n  enabled: true\n  number_variables:\n    - Age\n    - Priority\n"), 0o600))
	cfg, err := parseConfig([]string{"--config", file}, envOf(map[string]string{"BRIDGE_OMNICHANNEL_APP_ID": "a", "BRIDGE_OMNICHANNEL_APP_PASSWORD": "p"}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{"Age", "Priority"}, app.SectionOf[omnichannel.Section](&cfg, "omnichannel").NumberVariables)
}

// With directline.disabled in T1 the bridge serves Omnichannel's /api/messages but no Direct
// Line server: no routes, and no secret generated (none in the data directory) or printed.
func TestT1WithoutDirectLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t1.yaml")
	require.NoError(t, os.WriteFile(file, []byte(t1Base+"directline:\n  disabled: true\nomnichannel:\n  enabled: true\n"), 0o600))
	env := envOf(map[string]string{"BRIDGE_OMNICHANNEL_APP_ID": "00000000-0000-0000-0000-000000000001", "BRIDGE_OMNICHANNEL_APP_PASSWORD": "s3cret-from-env"})
	dataDir := t.TempDir()
	out, logs := &testutil.Buffer{}, &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", file, "--listen", "127.0.0.1:0", "--admin-listen", "", "--data-dir", dataDir}, env, out, logs)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Health:") }, 10*time.Second, 10*time.Millisecond, "the banner")
	banner := out.String()
	require.Contains(t, banner, "/api/messages")
	require.NotContains(t, banner, "Direct Line secret")
	require.NotContains(t, banner, "/v3/directline")
	require.NoFileExists(t, filepath.Join(dataDir, "directline-secret"))

	_, base, _ := strings.Cut(banner, "messaging endpoint ")
	base, _, _ = strings.Cut(base, "/api/messages")
	resp, err := http.Post(base+"/v3/directline/conversations", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "no Direct Line server")
	resp, err = http.Post(base+"/api/messages", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "Omnichannel's endpoint is there, and wants its token")
	cancel()
	require.NoError(t, <-done)
}
