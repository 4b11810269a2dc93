package dlclient

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

func TestConvLogNamesTheConversation(t *testing.T) {
	var buf bytes.Buffer
	l := zerolog.New(&buf).Level(zerolog.InfoLevel)
	c := convLog{l: &l, conv: "c1"}
	c.Info().Msg("opening")
	c.upstream("up1", "dl.example").Warn().Msg("open")
	c.Debug().Msg("below the level") // writes nothing
	require.Nil(t, c.Debug())

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var first, second map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &first))
	require.NoError(t, json.Unmarshal(lines[1], &second))
	require.Equal(t, "c1", first["conv_id"])
	require.NotContains(t, first, "upstream_conv_id")
	require.Equal(t, map[string]any{"level": "warn", "conv_id": "c1", "upstream_conv_id": "up1", "peer": "dl.example", "message": "open"}, second)
}

// A session's logger is the client's, not a copy with a context buffer of its own: making one
// and writing an event with the ids allocates nothing (zerolog pools its events; the race
// detector drops pooled items at random, hence the allowance under it).
func TestConvLogAllocatesNothingPerSession(t *testing.T) {
	l := zerolog.New(io.Discard)
	allocs := testing.AllocsPerRun(100, func() {
		c := convLog{l: &l, conv: "c1"}.upstream("up1", "host")
		c.Info().Msg("x")
	})
	limit := 0.0
	if testutil.RaceEnabled {
		limit = 1
	}
	require.LessOrEqual(t, allocs, limit)
}
