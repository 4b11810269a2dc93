package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/bfbridge/bfbridge/app"
)

// TestConfigDefaults: bridge config defaults prints a file that bridge --config loads, that
// validates, and that bridge config check accepts.
func TestConfigDefaults(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"config", "defaults"}, envOf(nil), &out, io.Discard))
	require.Contains(t, out.String(), "\nlisten: 127.0.0.1:8080\n")
	require.Contains(t, out.String(), "\n  # TokenTTL is how long issued tokens live. Default: 30m")
	file := filepath.Join(t.TempDir(), "bridge.yaml")
	require.NoError(t, os.WriteFile(file, out.Bytes(), 0o600))

	cfg, err := parseConfig([]string{"--config", file}, envOf(nil), io.Discard)
	require.NoError(t, err)
	cfg.Finish()
	require.NoError(t, cfg.Validate())

	var ok bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"config", "check", file}, envOf(nil), &ok, io.Discard))
	require.Equal(t, "ok: "+file+" is a valid configuration (with the BRIDGE_… environment applied)\n", ok.String())

	// the secrets of the environment are not printed by defaults
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"config", "defaults"}, envOf(map[string]string{"BRIDGE_DIRECTLINE_SECRET": "env-secret-0123456789"}), &out, io.Discard))
	require.NotContains(t, out.String(), "env-secret-0123456789")

	for _, args := range [][]string{{"config"}, {"config", "frob"}, {"config", "check"}, {"config", "defaults", "x"}} {
		require.Error(t, run(context.Background(), args, envOf(nil), io.Discard, io.Discard), "%v", args)
	}
}

// TestConfigCheck: bridge config check fails with exactly the error start-up fails with, for a
// file's syntax, keys, types and values and for the environment applied over it.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body string
		env        map[string]string
		want       []string
	}{
		{"unknown key", "listen: 127.0.0.1:0\nbott:\n  endpoint: x\nbot:\n  endpiont: y\n", nil, []string{`line 2: unknown key "bott" (did you mean "bot"?)`, `line 5: unknown key "endpiont" in bot: (did you mean "endpoint"?)`}},
		{"wrong type", "listen: 127.0.0.1:0\ndirectline:\n  keep_alive: soon\n", nil, []string{"line 3", "soon"}},
		{"invalid values", "listen: 127.0.0.1:0\nlog_level: loud\nbot:\n  app_id: x\n", nil, []string{"log_level", "bot.app_password"}},
		{"the environment", "listen: 127.0.0.1:0\n", map[string]string{"BRIDGE_STORE": "redis"}, []string{"redis"}},
		{"a bad variable", "listen: 127.0.0.1:0\n", map[string]string{"BRIDGE_LOG_LEVEL": "loud"}, []string{"log_level"}},
		{"a bad bot script", "listen: 127.0.0.1:0\nsandbox:\n  bot_script: " + filepath.Join(dir, "bot.yaml") + "\n", nil, []string{"bot.yaml: line 2", "not a valid regular expression"}},
		{"a missing bot script", "listen: 127.0.0.1:0\nsandbox:\n  bot_script: " + filepath.Join(dir, "none.yaml") + "\n", nil, []string{"none.yaml"}},
		{"no such target", "listen: 127.0.0.1:0\nescalation:\n  target: dynamics\n", nil, []string{"dynamics"}},
		{"exposure", "listen: 0.0.0.0:0\npublic_url: http://127.0.0.1:8080\n", nil, []string{"not a loopback address"}},
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bot.yaml"), []byte("rules:\n  - match: '(oops'\n    reply: x\n"), 0o600))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			require.NoError(t, os.WriteFile(file, []byte(tc.body), 0o600))
			var out bytes.Buffer
			checkErr := run(context.Background(), []string{"config", "check", file}, envOf(tc.env), &out, io.Discard)
			require.Error(t, checkErr)
			require.Empty(t, out.String(), "no ok line")
			for _, w := range tc.want {
				require.ErrorContains(t, checkErr, w)
			}
			require.NotContains(t, checkErr.Error(), "struct {", "no Go type in the message")
			env := map[string]string{"BRIDGE_DATA_DIR": t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			startErr := run(context.Background(), []string{"--config", file}, envOf(env), io.Discard, io.Discard)
			require.Error(t, startErr)
			require.Equal(t, startErr.Error(), checkErr.Error(), "the same errors as start-up")
		})
	}
	t.Run("missing file", func(t *testing.T) {
		require.ErrorContains(t, run(context.Background(), []string{"config", "check", filepath.Join(dir, "nope.yaml")}, envOf(nil), io.Discard, io.Discard), "nope.yaml")
	})
}

// readmeOnly are the BRIDGE_ variables README names that are not configuration settings.
var readmeOnly = []string{
	"BRIDGE_CONFIG",             // names the file itself (--config)
	"BRIDGE_CONFORMANCE_SECRET", // bridge conformance --secret
	"BRIDGE_LOAD_SECRET",        // bridge load --secret
}

// TestREADMEConfiguration keeps README's configuration table in step with the configuration:
// every variable the configuration reads and every flag is in README, and every BRIDGE_
// variable README names is read by the configuration or is one of readmeOnly.
func TestREADMEConfiguration(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	cfg := app.Defaults()
	known := cfg.EnvNames()
	require.Greater(t, len(known), 20)
	for _, name := range known {
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(readme) {
			t.Errorf("README does not document %s", name)
		}
	}
	for _, f := range flags {
		require.Contains(t, known, f.env, "flag --%s", f.name)
		if !strings.Contains(readme, "`--"+f.name+"`") {
			t.Errorf("README's table does not list --%s", f.name)
		}
	}
	if !strings.Contains(readme, "`--allow-unauthenticated-public`") {
		t.Error("README does not list --allow-unauthenticated-public")
	}
	mentioned := regexp.MustCompile(`\bBRIDGE_[A-Z0-9_]*[A-Z0-9]\b`).FindAllString(readme, -1)
	require.NotEmpty(t, mentioned)
	for _, name := range mentioned {
		if !slices.Contains(known, name) && !slices.Contains(readmeOnly, name) {
			t.Errorf("README names %s, which the configuration does not read (add it to readmeOnly if it is not a setting)", name)
		}
	}
	for _, name := range readmeOnly {
		if slices.Contains(known, name) {
			t.Errorf("%s is a setting, not a README-only variable", name)
		}
	}
	// every dotted key README names in backquotes (`directline.page_size`) is a key of the file
	ref, err := cfg.Reference()
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(ref, &doc))
	keys := map[string]bool{}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			keys[prefix+n.Content[i].Value] = true
			walk(prefix+n.Content[i].Value+".", n.Content[i+1])
		}
	}
	walk("", doc.Content[0])
	checked := 0
	for _, m := range regexp.MustCompile("`([a-z_]+(?:\\.[a-z_]+)+)`").FindAllStringSubmatch(readme, -1) {
		top, _, _ := strings.Cut(m[1], ".")
		if !keys[top] {
			continue // not a key of the file (a file name, a package)
		}
		checked++
		if !keys[m[1]] {
			t.Errorf("README names the key %s, which the file does not have", m[1])
		}
	}
	require.Greater(t, checked, 20, "README's dotted keys")
	for _, cmd := range []string{"bridge config defaults", "bridge config check"} {
		if !strings.Contains(readme, cmd) {
			t.Errorf("README does not mention %s", cmd)
		}
	}
}
