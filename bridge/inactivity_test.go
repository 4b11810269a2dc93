package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/bridge/store/sqlite"
)

var quick = bridge.Inactivity{RemindAfter: 150 * time.Millisecond, Reminder: "Still there?", CloseAfter: 500 * time.Millisecond, CloseText: "Closing now."}

func idleHub(t *testing.T, store bridge.Store, rules bridge.Inactivity) (*bridge.Hub, *recorder, *recorder) {
	hub := bridge.NewHub(store, bridge.HubConfig{DeliveryTimeout: time.Second, Inactivity: rules, InactivityTick: 20 * time.Millisecond}, zerolog.Nop())
	t.Cleanup(hub.Close)
	customer, bot := &recorder{name: "directline"}, &recorder{name: "botframework"}
	hub.Register(customer)
	hub.Register(bot)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = hub.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return hub, customer, bot
}

func ended(t *testing.T, hub *bridge.Hub, id string) func() bool {
	return func() bool {
		c, err := hub.Conversation(context.Background(), id)
		require.NoError(t, err)
		return c.State == bridge.StateEnded
	}
}

func TestInactivityRemindsThenCloses(t *testing.T) {
	ctx := context.Background()
	hub, customer, bot := idleHub(t, memory.New(), quick)
	leg := customerLeg("c1")
	_, _, err := hub.Start(ctx, "c1", leg)
	require.NoError(t, err)
	_, err = hub.Receive(ctx, leg, &activity.Activity{Type: "message", Text: "hi", From: &activity.ChannelAccount{ID: "u"}}, "")
	require.NoError(t, err)

	require.Eventually(t, ended(t, hub, "c1"), 5*time.Second, 10*time.Millisecond, "the silent conversation is closed")
	require.Eventually(t, func() bool { return len(customer.sent()) == 3 }, 5*time.Second, 10*time.Millisecond, "the end reaches the customer")
	require.Equal(t, []string{"Still there?", "Closing now.", "endOfConversation"}, texts(customer.sent()))
	require.NoError(t, hub.Wait(ctx))
	last := bot.sent()[len(bot.sent())-1]
	require.Equal(t, activity.TypeEndOfConversation, last.Type, "the bot hears the end too")
	require.Equal(t, "botTimedOut", last.Code)
}

func TestInactivityResetsWhenTheCustomerSpeaks(t *testing.T) {
	ctx := context.Background()
	hub, customer, _ := idleHub(t, memory.New(), bridge.Inactivity{RemindAfter: 300 * time.Millisecond})
	leg := customerLeg("c1")
	_, _, err := hub.Start(ctx, "c1", leg)
	require.NoError(t, err)
	for range 5 { // talking keeps the reminder away
		_, err = hub.Receive(ctx, leg, &activity.Activity{Type: "message", Text: "still typing", From: &activity.ChannelAccount{ID: "u"}}, "")
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond) // the customer's pace, not a wait for the code under test
	}
	require.Empty(t, customer.sent())
	require.Eventually(t, func() bool { return len(customer.sent()) == 1 }, 5*time.Second, 10*time.Millisecond, "one reminder once quiet")
	require.Equal(t, bridge.DefaultReminder, customer.sent()[0].Text)
}

func TestInactivityPerConversationAndNotAfterHandoff(t *testing.T) {
	ctx := context.Background()
	hub, customer, _ := idleHub(t, memory.New(), bridge.Inactivity{}) // no default rule
	_, _, err := hub.Start(ctx, "a", customerLeg("a"))
	require.NoError(t, err)
	_, _, err = hub.Start(ctx, "b", customerLeg("b"))
	require.NoError(t, err)
	require.NoError(t, hub.SetInactivity(ctx, "a", bridge.Inactivity{CloseAfter: 100 * time.Millisecond}))
	require.NoError(t, hub.SetInactivity(ctx, "b", bridge.Inactivity{CloseAfter: 100 * time.Millisecond}))
	_, err = hub.Update(ctx, "b", func(c *bridge.Conversation) error {
		c.State = bridge.StateHandedOff // Omnichannel owns it: its own timeout rules apply
		return nil
	})
	require.NoError(t, err)

	require.Eventually(t, ended(t, hub, "a"), 5*time.Second, 10*time.Millisecond, "a is closed by its own rule")
	require.Eventually(t, func() bool { return len(customer.sent()) == 2 }, 5*time.Second, 10*time.Millisecond, "the end reaches the customer")
	time.Sleep(300 * time.Millisecond) // well past b's deadline
	require.False(t, ended(t, hub, "b")(), "a handed-off conversation is left to the contact center")
	require.Equal(t, []string{bridge.DefaultCloseText, "endOfConversation"}, texts(customer.sent()))
}

func TestInactivitySurvivesARestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rules := bridge.Inactivity{CloseAfter: 1500 * time.Millisecond}

	store, err := sqlite.Open(ctx, sqlite.Options{Dir: dir})
	require.NoError(t, err)
	first := bridge.NewHub(store, bridge.HubConfig{Inactivity: rules, InactivityTick: 20 * time.Millisecond}, zerolog.Nop())
	first.Register(&recorder{name: "directline"})
	first.Register(&recorder{name: "botframework"})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = first.Run(runCtx); close(done) }()
	leg := customerLeg("r1")
	_, _, err = first.Start(ctx, "r1", leg)
	require.NoError(t, err)
	_, err = first.Receive(ctx, leg, &activity.Activity{Type: "message", Text: "hello", From: &activity.ChannelAccount{ID: "u"}}, "")
	require.NoError(t, err)
	spoke := time.Now()
	stop() // the bridge goes down before the deadline
	<-done
	require.NoError(t, store.Close())

	store, err = sqlite.Open(ctx, sqlite.Options{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	second, customer, _ := idleHub(t, store, rules)
	require.Eventually(t, ended(t, second, "r1"), 10*time.Second, 10*time.Millisecond, "the restarted bridge closes the conversation")
	require.Eventually(t, func() bool { return len(customer.sent()) == 2 }, 5*time.Second, 10*time.Millisecond, "the end reaches the customer")
	require.GreaterOrEqual(t, time.Since(spoke), rules.CloseAfter, "not before its deadline")
	require.Equal(t, []string{bridge.DefaultCloseText, "endOfConversation"}, texts(customer.sent()))
}
