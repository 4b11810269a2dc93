// Package apptest runs the whole bridge (package app) inside a test's process on a loopback
// port, wired as in production, for tests that need every channel at once: a contact center's
// end-to-end tests, the conformance suite.
package apptest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
)

// Serve builds the bridge from cfg on a fresh loopback port (cfg.Listen is replaced; an empty
// or default DataDir becomes a temporary directory, and a default shutdown timeout 5 s) and serves it until
// the test ends, when it shuts it down and checks that it stopped. Its public URL is
// a.Config().PublicURL.
func Serve(t testing.TB, cfg app.Config, log zerolog.Logger) *app.App {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.Listen = ln.Addr().String()
	if cfg.DataDir == "" || cfg.DataDir == app.Defaults().DataDir {
		cfg.DataDir = t.TempDir()
	}
	if cfg.ShutdownTimeout == app.Defaults().ShutdownTimeout {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	a, err := app.New(cfg, log)
	if err != nil {
		_ = ln.Close()
	}
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("bridge did not shut down")
		}
	})
	return a
}

// Log is a test's logger at level: what the bridge logs shows with the test's output.
func Log(t testing.TB, level zerolog.Level) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(level)
}

// Load returns the configuration a bridge would start with from a YAML file holding body and
// the environment env, over the registry's defaults, with the memory store (nothing on disk).
func Load(t testing.TB, body string, env map[string]string) app.Config {
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
