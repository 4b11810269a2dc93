package bridge

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLegKeys holds the key comparisons that build no key (sameKey, hasKey, legByKey) to
// comparing Leg.Key values, over names with and without slashes.
func TestLegKeys(t *testing.T) {
	legs := []Leg{{}, {Channel: "a"}, {Channel: "a", ConversationID: "b"}, {Channel: "a/b"}, {Channel: "a", ConversationID: "b/c"},
		{Channel: "a/b", ConversationID: "c"}, {Channel: "ab", ConversationID: "c"}, {Channel: "a", ConversationID: "bc"}, {ConversationID: "a/b"}}
	for _, x := range legs {
		for _, y := range legs {
			require.Equal(t, x.Key() == y.Key(), sameKey(x, y), "%q %q", x.Key(), y.Key())
			require.Equal(t, x.Key() == y.Key(), x.hasKey(y.Key()), "%q %q", x.Key(), y.Key())
		}
	}
	agent := Leg{Channel: "desk", ConversationID: "a/1"}
	c := &Conversation{Customer: Leg{Channel: "directline", ConversationID: "c"}, Bot: Leg{Channel: "botframework", ConversationID: "b"}, Agent: &agent}
	for _, l := range c.Legs() {
		require.Equal(t, l, legByKey(c, l.Key()))
	}
	require.Equal(t, Leg{Channel: "desk", ConversationID: "gone/x"}, legByKey(c, "desk/gone/x"))
	_, ok := c.LegWithKey("desk/gone/x")
	require.False(t, ok)
	_, ok = (&Conversation{Customer: c.Customer}).LegWithKey(Leg{}.Key()) // no bot leg: "/" is no key
	require.False(t, ok)
}
