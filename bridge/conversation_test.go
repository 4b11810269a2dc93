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

// TestLegOf checks that a leg is found by its key, as Leg.Key compares them, including names
// whose slash makes two different legs the same key, and that finding one builds no key.
func TestLegOf(t *testing.T) {
	agent := bridge.Leg{Channel: "desk", ConversationID: "a1"}
	c := &bridge.Conversation{
		Customer: bridge.Leg{Channel: "directline", ConversationID: "c1"},
		Bot:      bridge.Leg{Channel: "botframework", ConversationID: "b/1"},
		Agent:    &agent,
	}
	for _, tc := range []struct {
		leg  bridge.Leg
		role bridge.Role
	}{
		{bridge.Leg{Channel: "directline", ConversationID: "c1"}, bridge.RoleCustomer},
		{bridge.Leg{Channel: "botframework", ConversationID: "b/1"}, bridge.RoleBot},
		{bridge.Leg{Channel: "botframework/b", ConversationID: "1"}, bridge.RoleBot}, // the same key
		{bridge.Leg{Channel: "desk", ConversationID: "a1"}, bridge.RoleAgent},
		{bridge.Leg{Channel: "desk", ConversationID: "a2"}, ""},
		{bridge.Leg{Channel: "directline", ConversationID: "c"}, ""},
		{bridge.Leg{}, ""},
	} {
		role, ok := c.LegOf(tc.leg)
		require.Equal(t, tc.role, role, tc.leg.Key())
		require.Equal(t, tc.role != "", ok)
	}
	noAgent := &bridge.Conversation{Customer: c.Customer}
	role, ok := noAgent.LegOf(bridge.Leg{Channel: "botframework", ConversationID: "b/1"})
	require.False(t, ok, role)
	leg := bridge.Leg{Channel: "desk", ConversationID: "a1"}
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = c.LegOf(leg) }))
}
