package bridge_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// TestFormatActivityID holds the id of a record to the Direct Line form
// "{conversationId}|{seq:%07d}" (directline.md §3), which it now writes without fmt, in one
// allocation.
func TestFormatActivityID(t *testing.T) {
	for _, seq := range []int64{0, 1, 42, 999_999, 1_000_000, 9_999_999, 10_000_000, 1 << 40, -1, -42} {
		for _, conv := range []string{"", "c", "8fJ2kQ|x é"} {
			require.Equal(t, fmt.Sprintf("%s|%07d", conv, seq), bridge.FormatActivityID(conv, seq))
		}
	}
	allocs := testing.AllocsPerRun(100, func() { _ = bridge.FormatActivityID("8fJ2kQ", 1234) })
	require.LessOrEqual(t, allocs, 1.0)
}
