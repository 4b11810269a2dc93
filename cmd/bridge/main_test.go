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
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bridge.yaml")
	require.NoError(t, os.WriteFile(file, []byte("listen: 127.0.0.1:7000\nbot:\n  endpoint: http://127.0.0.1:1/api/messages\n  name: File Bot\ndirectline:\n  keep_alive: 5s\n"), 0o600))

	cfg, err := parseConfig([]string{"--config", file}, envOf(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7000", cfg.Listen)
	require.Equal(t, "File Bot", cfg.Bot.Name)
	require.Equal(t, 5*time.Second, app.SectionOf[directline.Section](&cfg, "directline").KeepAlive)
	require.Equal(t, 15*time.Second, cfg.Bot.Timeout, "defaults stay where the file is silent")

	env := envOf(map[string]string{"BRIDGE_LISTEN": "127.0.0.1:7001", "BRIDGE_BOT_ENDPOINT": "http://127.0.0.1:2/api/messages", "BRIDGE_DIRECTLINE_SECRET": "from-env-0123456789"})
	cfg, err = parseConfig([]string{"--config", file}, env, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7001", cfg.Listen, "env beats the file")
	require.Equal(t, "http://127.0.0.1:2/api/messages", app.SectionOf[botframework.Section](&cfg, "bot").BotEndpoint)
	require.Equal(t, "from-env-0123456789", app.SectionOf[directline.Section](&cfg, "directline").Secret)

	cfg, err = parseConfig([]string{"--config", file, "--listen", "127.0.0.1:7002", "--bot-app-id", "app"}, env, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7002", cfg.Listen, "flags beat env")
	require.Equal(t, "app", app.SectionOf[botframework.Section](&cfg, "bot").BotAppID)
}

func TestT1Configuration(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "t1.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`omnichannel:
  enabled: true
  tenant_id: contoso.onmicrosoft.com
bot:
  directline:
    token_endpoint: http://127.0.0.1:1/powervirtualagents/botsbyschema/cr_bot/directline/token?api-version=2022-03-01-preview
    greeting: true
sandbox:
  disabled: true
`), 0o600))
	env := envOf(map[string]string{"BRIDGE_OMNICHANNEL_APP_ID": "00000000-0000-0000-0000-000000000001", "BRIDGE_OMNICHANNEL_APP_PASSWORD": "s3cret-from-env"})
	out, logs := &testutil.Buffer{}, &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", file, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, env, out, logs)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Health:") }, 10*time.Second, 10*time.Millisecond, "the banner")
	require.Contains(t, out.String(), "a hosted bot through Direct Line")
	require.Contains(t, out.String(), "/api/messages")
	require.NotContains(t, out.String(), "Agent desk", "the sandbox desk is off")
	require.NotContains(t, logs.String(), "s3cret-from-env")
	cancel()
	require.NoError(t, <-done)

	_, err := parseConfig([]string{"--config", file, "--bot-endpoint", "http://127.0.0.1:1/api/messages"}, env, io.Discard)
	require.NoError(t, err)
	err = run(context.Background(), []string{"--config", file, "--bot-endpoint", "http://127.0.0.1:1/api/messages", "--listen", "127.0.0.1:0"}, env, io.Discard, io.Discard)
	require.ErrorContains(t, err, "not both")
	err = run(context.Background(), []string{"--config", file, "--listen", "127.0.0.1:0"}, envOf(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "omnichannel.app_id")
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	tests := []struct{ name, body, want string }{
		{"unknown key", "listen: 127.0.0.1:1\nbott:\n  endpoint: x\n", "line 2"},
		{"malformed", "listen: [\n", "line"},
		{"wrong type", "directline:\n  keep_alive: soon\n", "line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "_")+".yaml", tc.body)
			_, err := parseConfig([]string{"--config", p}, envOf(nil), io.Discard)
			require.Error(t, err)
			require.Contains(t, err.Error(), p, "the error names the file")
			require.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("a bad routing file or bot script fails start-up naming the file and line", func(t *testing.T) {
		routingFile := write("routing.yaml", "workstreams:\n  - name: chat\n    rules:\n      - name: r\n        when: { var: X, op: resembles, value: 1 }\n        queue: Nowhere\n    fallback_queue: General\nqueues:\n  - name: General\n    agents: [a]\nagents:\n  - id: a\n    capacity: 1\n")
		err := run(context.Background(), []string{"--routing", routingFile, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, envOf(nil), io.Discard, io.Discard)
		require.Error(t, err)
		require.Contains(t, err.Error(), routingFile+`:6:16: workstream "chat", rule "r": queue "Nowhere" is not a queue`)
		require.Contains(t, err.Error(), routingFile+`:5:22: workstream "chat", rule "r": variable "X" is not declared`)
		botFile := write("bot.yaml", "rules:\n  - match: ok\n    reply: fine\n  - match: '(oops'\n    reply: x\n")
		err = run(context.Background(), []string{"--sandbox-bot", botFile, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, envOf(nil), io.Discard, io.Discard)
		require.ErrorContains(t, err, botFile+": line 4: rule 2: match \"(oops\" is not a valid regular expression")
	})
	t.Run("invalid values fail start-up", func(t *testing.T) {
		err := run(context.Background(), []string{"--bot-endpoint", "not a url", "--listen", "127.0.0.1:0"}, envOf(nil), io.Discard, io.Discard)
		require.ErrorContains(t, err, "bot.endpoint")
		err = run(context.Background(), []string{"--bot-app-id", "x", "--listen", "127.0.0.1:0"}, envOf(nil), io.Discard, io.Discard)
		require.ErrorContains(t, err, "app_password")
		err = run(context.Background(), []string{"frobnicate"}, envOf(nil), io.Discard, io.Discard)
		require.ErrorContains(t, err, "unknown command")
	})
}

func TestRunWithNoConfiguration(t *testing.T) {
	out, logs := &testutil.Buffer{}, &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	dataDir := t.TempDir()
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dataDir}, envOf(nil), out, logs)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Health:") }, 10*time.Second, 10*time.Millisecond, "the banner")
	banner := out.String()
	require.Contains(t, banner, "the sandbox bot")
	for _, page := range []string{"Customer chat:", "Agent desk:", "Supervisor:"} {
		require.Contains(t, banner, page)
	}
	require.FileExists(t, filepath.Join(dataDir, "bridge.db"), "the durable store is in the data directory")
	require.Contains(t, banner, "Direct Line secret (generated")
	// the generated secret is printed for the operator, never logged
	lines := strings.Split(banner, "\n")
	var secret string
	for i, l := range lines {
		if strings.Contains(l, "Direct Line secret") {
			secret = strings.TrimSpace(lines[i+1])
		}
	}
	require.Len(t, secret, 43)
	require.NotContains(t, logs.String(), secret)
	// the health endpoint answers
	var health string
	for _, l := range lines {
		if strings.Contains(l, "Health:") {
			health = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "Health:"))
		}
	}
	resp, err := http.Get(health)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	require.Contains(t, logs.String(), "shutting down")
}

func TestUnauthenticatedOnAPublicAddress(t *testing.T) {
	args := []string{"--listen", "0.0.0.0:0", "--bot-endpoint", "http://127.0.0.1:1/api/messages", "--data-dir", t.TempDir()}
	err := run(context.Background(), args, envOf(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "anonymous bot mode")
	require.ErrorContains(t, err, "--allow-unauthenticated-public")

	cfg, err := parseConfig(append(args, "--allow-unauthenticated-public"), envOf(nil), io.Discard)
	require.NoError(t, err)
	require.True(t, cfg.AllowUnauthenticatedPublic)
	cfg, err = parseConfig(args, envOf(map[string]string{"BRIDGE_ALLOW_UNAUTHENTICATED_PUBLIC": "true"}), io.Discard)
	require.NoError(t, err)
	require.True(t, cfg.AllowUnauthenticatedPublic)
}
