package directline

import (
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
