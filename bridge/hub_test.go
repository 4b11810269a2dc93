package bridge_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

// recorder is a Channel that records what it is sent and can be told to fail.
type recorder struct {
	name string
	mu   sync.Mutex
	got  []*activity.Activity
	fail error
	wait time.Duration
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Send(ctx context.Context, _ bridge.Leg, a *activity.Activity) (string, error) {
	if r.wait > 0 {
		select {
		case <-time.After(r.wait):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return "", r.fail
	}
	r.got = append(r.got, a)
	return a.ID, nil
}

func (r *recorder) sent() []*activity.Activity {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*activity.Activity(nil), r.got...)
}

func newHub(t *testing.T, timeout time.Duration) (*bridge.Hub, *recorder, *recorder) {
	return newHubOn(t, memory.New(), timeout)
}

// newHubOn is newHub over store, for tests that read what the Hub stored.
func newHubOn(t *testing.T, store bridge.Store, timeout time.Duration) (*bridge.Hub, *recorder, *recorder) {
	hub := bridge.NewHub(store, bridge.HubConfig{DeliveryTimeout: timeout}, zerolog.Nop())
	t.Cleanup(hub.Close)
	customer, bot := &recorder{name: "directline"}, &recorder{name: "botframework"}
	hub.Register(customer)
	hub.Register(bot)
	return hub, customer, bot
}

func customerLeg(id string) bridge.Leg {
	return bridge.Leg{Channel: "directline", ConversationID: id}
}

func TestHubRelaysCustomerAndBot(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	hub, customer, bot := newHubOn(t, store, time.Second)
	c, created, err := hub.Start(ctx, "conv1", customerLeg("conv1"))
	require.NoError(t, err)
	require.True(t, created)
	_, created, err = hub.Start(ctx, "conv1", customerLeg("conv1"))
	require.NoError(t, err)
	require.False(t, created, "a second start finds the conversation")

	id, err := hub.Receive(ctx, customerLeg("conv1"), &activity.Activity{Type: "message", Text: "hi", From: &activity.ChannelAccount{ID: "u1"}}, "")
	require.NoError(t, err)
	require.Equal(t, "conv1|0000000", id)
	got := bot.sent()
	require.Len(t, got, 3, "two conversationUpdates, then the message")
	require.Equal(t, "conversationUpdate", got[0].Type)
	require.Equal(t, "bot", got[0].MembersAdded[0].ID)
	require.Equal(t, "u1", got[1].MembersAdded[0].ID)
	require.Equal(t, "hi", got[2].Text)

	// the bot replies to the real activity, and to one that does not exist
	id, err = hub.Receive(ctx, c.Bot, &activity.Activity{Type: "message", Text: "echo", ReplyToID: "conv1|0000000"}, "")
	require.NoError(t, err)
	require.Equal(t, "conv1|0000001", id)
	_, err = hub.Receive(ctx, c.Bot, &activity.Activity{Type: "message", Text: "welcome", ReplyToID: "conv1|cu1"}, "")
	require.NoError(t, err)
	sent := customer.sent()
	require.Len(t, sent, 2)
	require.Equal(t, "conv1|0000000", sent[0].ReplyToID)
	require.Empty(t, sent[1].ReplyToID, "a replyToId that is not in the log is dropped")

	// the log holds everything in order
	recs, err := hub.Since(ctx, "conv1", -1, 0)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, bridge.RoleCustomer, recs[0].From)
	require.Equal(t, bridge.RoleBot, recs[1].From)
	cur, err := store.Cursor(ctx, "conv1", c.Bot.Key())
	require.NoError(t, err)
	require.Equal(t, int64(0), cur)
}

func TestHubGreetsAtStartWhenTheUserIsKnown(t *testing.T) {
	ctx := context.Background()
	hub, _, bot := newHub(t, time.Second)
	leg := customerLeg("conv2")
	leg.User = activity.ChannelAccount{ID: "dl_u"}
	_, _, err := hub.Start(ctx, "conv2", leg)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(bot.sent()) == 2 }, 5*time.Second, 10*time.Millisecond, "greeting")
	_, err = hub.Receive(ctx, leg, &activity.Activity{Type: "message", Text: "x", From: &activity.ChannelAccount{ID: "dl_u"}}, "")
	require.NoError(t, err)
	require.Len(t, bot.sent(), 3, "no second greeting")
}

func TestHubDeliveryErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("failure keeps the activity and reports it", func(t *testing.T) {
		hub, _, bot := newHub(t, time.Second)
		_, _, err := hub.Start(ctx, "c", customerLeg("c"))
		require.NoError(t, err)
		bot.fail = &bridge.DeliveryError{Leg: "bot", Status: 500, Err: errors.New("boom")}
		id, err := hub.Receive(ctx, customerLeg("c"), &activity.Activity{Type: "message", From: &activity.ChannelAccount{ID: "u"}}, "")
		var de *bridge.DeliveryError
		require.ErrorAs(t, err, &de)
		require.Equal(t, 500, de.Status)
		require.Equal(t, "c|0000000", id)
		last, err := hub.Last(ctx, "c")
		require.NoError(t, err)
		require.Equal(t, int64(0), last)
	})
	t.Run("timeout", func(t *testing.T) {
		hub, _, bot := newHub(t, 50*time.Millisecond)
		bot.wait = time.Second
		_, _, err := hub.Start(ctx, "c", customerLeg("c"))
		require.NoError(t, err)
		_, err = hub.Receive(ctx, customerLeg("c"), &activity.Activity{Type: "message", From: &activity.ChannelAccount{ID: "u"}}, "")
		var de *bridge.DeliveryError
		require.ErrorAs(t, err, &de)
		require.True(t, de.Timeout)
	})
	t.Run("unknown and ended conversations", func(t *testing.T) {
		hub, _, _ := newHub(t, time.Second)
		_, err := hub.Receive(ctx, customerLeg("nope"), &activity.Activity{Type: "message"}, "")
		require.ErrorIs(t, err, bridge.ErrUnknownConversation)
		_, _, err = hub.Start(ctx, "e", customerLeg("e"))
		require.NoError(t, err)
		_, err = hub.Update(ctx, "e", func(c *bridge.Conversation) error { c.State = bridge.StateEnded; return nil })
		require.NoError(t, err)
		_, err = hub.Receive(ctx, customerLeg("e"), &activity.Activity{Type: "message"}, "")
		require.ErrorIs(t, err, bridge.ErrConversationEnded)
	})
	t.Run("duplicate channel names panic", func(t *testing.T) {
		hub, _, _ := newHub(t, time.Second)
		require.Panics(t, func() { hub.Register(&recorder{name: "directline"}) })
	})
}
