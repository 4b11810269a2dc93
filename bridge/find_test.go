package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

func TestFindConversations(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 450 {
		c := &bridge.Conversation{ID: fmt.Sprintf("c%03d", i), State: bridge.StateBot, Updated: t0.Add(time.Duration(i) * time.Minute),
			Customer: bridge.Leg{Channel: "directline", ConversationID: fmt.Sprintf("d%03d", i), User: activity.ChannelAccount{ID: fmt.Sprintf("u%d", i%3)}}}
		if i%10 == 0 {
			c.State = bridge.StateAgent
			c.Agent = &bridge.Leg{Channel: "desk", ConversationID: fmt.Sprintf("a%03d", i)}
		}
		_, _, err := s.CreateConversation(ctx, c)
		require.NoError(t, err)
	}
	ids := func(cs []*bridge.Conversation) (out []string) {
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		f     bridge.Filter
		after string
		limit int
		scan  int
		want  []string
		next  string
	}{
		{"all, a page", bridge.Filter{}, "", 2, 0, []string{"c000", "c001"}, "c001"},
		{"all, from a cursor", bridge.Filter{}, "c447", 5, 0, []string{"c448", "c449"}, ""},
		{"the last one fills the page", bridge.Filter{}, "c447", 2, 0, []string{"c448", "c449"}, ""},
		{"state", bridge.Filter{State: bridge.StateAgent}, "c200", 3, 0, []string{"c210", "c220", "c230"}, "c230"},
		{"channel", bridge.Filter{Channel: "desk"}, "c430", 10, 0, []string{"c440"}, ""},
		{"updated since", bridge.Filter{UpdatedSince: t0.Add(448 * time.Minute)}, "", 10, 0, []string{"c448", "c449"}, ""},
		{"customer", bridge.Filter{Customer: "u2"}, "c440", 10, 0, []string{"c443", "c446", "c449"}, ""},
		{"a bounded scan", bridge.Filter{State: bridge.StateAgent}, "", 10, 15, []string{"c000", "c010"}, "c014"},
		{"none", bridge.Filter{Customer: "nobody"}, "", 10, 0, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := bridge.FindConversations(ctx, s, tc.f, tc.after, tc.limit, tc.scan)
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(got))
			require.Equal(t, tc.next, next)
		})
	}
}
