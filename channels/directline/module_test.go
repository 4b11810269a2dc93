package directline

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/channels/module"
)

// Handoff commands reach the customer's client only when no contact center is configured.
func TestPassHandoffSignalsFollowsTheTarget(t *testing.T) {
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{}, zerolog.Nop())
	for target, pass := range map[string]bool{"none": true, "desk": false, "dynamics": false} {
		ch, err := newModule(&Section{}, module.Env{Hub: hub, PublicURL: "http://127.0.0.1:1", EscalationTarget: target})
		require.NoError(t, err)
		r := ch.(running)
		require.Equal(t, pass, r.cfg.PassHandoffSignals, target)
		require.Equal(t, "for this run", r.kept, "no data directory: a secret for this run")
		require.Contains(t, r.Describe().Notes[0], r.cfg.Secret)
	}
}

// With a store shared by several instances the generated secret is the store's: the first
// instance's for all, taken from a data directory where a single instance kept one before.
func TestSharedSecret(t *testing.T) {
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{}, zerolog.Nop())
	var mu sync.Mutex
	stored := map[string][]byte{}
	shared := func(_ context.Context, key string, create func() ([]byte, error)) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if v, ok := stored[key]; ok {
			return v, nil
		}
		v, err := create()
		stored[key] = v
		return v, err
	}
	secretOf := func(dataDir string) string {
		ch, err := newModule(&Section{}, module.Env{Hub: hub, PublicURL: "http://127.0.0.1:1", DataDir: dataDir, Shared: shared})
		require.NoError(t, err)
		r := ch.(running)
		require.Contains(t, r.kept, "shared")
		return r.cfg.Secret
	}
	kept := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(kept, "directline-secret"), []byte("kept-by-one-instance-0123\n"), 0o600))
	require.Equal(t, "kept-by-one-instance-0123", secretOf(kept), "a single instance's secret is taken over")
	require.Equal(t, "kept-by-one-instance-0123", secretOf(t.TempDir()), "and is every instance's")

	clear(stored)
	dir := t.TempDir()
	first := secretOf(dir)
	require.GreaterOrEqual(t, len(first), 16)
	require.Equal(t, first, secretOf(t.TempDir()))
	_, statErr := os.Stat(filepath.Join(dir, "directline-secret"))
	require.True(t, os.IsNotExist(statErr), "kept in the store, not in a data directory")

	// a secret configured wins
	ch, err := newModule(&Section{Config: Config{Secret: "configured-secret-0123"}}, module.Env{Hub: hub, PublicURL: "http://127.0.0.1:1", Shared: shared})
	require.NoError(t, err)
	require.Equal(t, "configured-secret-0123", ch.(running).cfg.Secret)
}
