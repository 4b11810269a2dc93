package routing

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefaultConfigValidates(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate())
	require.Equal(t, "chat", cfg.Workstreams[0].Name)
}
