// Package apptest runs the whole bridge (package app) inside a test's process on a loopback
// port, wired as in production, for tests that need every channel at once: a contact center's
// end-to-end tests, the conformance suite.
package apptest

import (
	"context"
	"net"
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
