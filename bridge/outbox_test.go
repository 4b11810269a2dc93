package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

// flaky is a channel that fails while down is set (retryably, like a bot whose endpoint does not
// answer), and records what it is sent otherwise.
type flaky struct {
	recorder
	mu   sync.Mutex
	down error
}

func (f *flaky) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down != nil {
		return "", down
	}
	return f.recorder.Send(ctx, to, a)
}

func (f *flaky) setDown(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = err
}

func messages(as []*activity.Activity) []string {
	var out []string
	for _, a := range as {
		if a.Type == activity.TypeMessage {
			out = append(out, a.Text)
		}
	}
	return out
}

func say(text string) *activity.Activity {
	return &activity.Activity{Type: "message", Text: text, From: &activity.ChannelAccount{ID: "u"}}
}

// flakyHub is a Hub on the memory store with a recording customer channel, a flaky bot and
// the conversation "c" started.
func flakyHub(t *testing.T) (*bridge.Hub, *flaky) {
	t.Helper()
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{DeliveryTimeout: time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	bot := &flaky{recorder: recorder{name: "botframework"}}
	hub.Register(&recorder{name: "directline"})
	hub.Register(bot)
	_, _, err := hub.Start(context.Background(), "c", customerLeg("c"))
	require.NoError(t, err)
	return hub, bot
}

func TestOutboxRetriesUntilTheLegComesBack(t *testing.T) {
	ctx := context.Background()
	hub, bot := flakyHub(t)
	bot.setDown(&bridge.DeliveryError{Leg: "bot", Retryable: true, Err: errors.New("connection refused")})
	for i := range 3 {
		id, err := hub.Receive(ctx, customerLeg("c"), say(fmt.Sprint("m", i)), "")
		var de *bridge.DeliveryError
		require.ErrorAs(t, err, &de, "the first attempt's failure is reported")
		require.NotEmpty(t, id, "and the activity is in the log all the same")
	}
	bot.setDown(nil)
	require.Eventually(t, func() bool { return len(messages(bot.sent())) == 3 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"m0", "m1", "m2"}, messages(bot.sent()), "in the log's order, once each")
	require.NoError(t, hub.Wait(ctx))
	c, err := hub.Conversation(ctx, "c")
	require.NoError(t, err)
	require.Empty(t, c.Dead)
}

func TestOutboxRecordsDeadLettersAndMovesOn(t *testing.T) {
	ctx := context.Background()
	hub, bot := flakyHub(t)
	bot.setDown(&bridge.DeliveryError{Leg: "bot", Status: 400, Err: errors.New("bad activity")})
	_, err := hub.Receive(ctx, customerLeg("c"), say("refused"), "")
	var de *bridge.DeliveryError
	require.ErrorAs(t, err, &de)
	require.Equal(t, 400, de.Status)
	bot.setDown(nil)
	_, err = hub.Receive(ctx, customerLeg("c"), say("next"), "")
	require.NoError(t, err)
	require.Equal(t, []string{"next"}, messages(bot.sent()), "the refused one is not retried: the line moved on")
	c, err := hub.Conversation(ctx, "c")
	require.NoError(t, err)
	require.Len(t, c.Dead, 1)
	require.Equal(t, int64(0), c.Dead[0].Seq)
	require.Equal(t, 400, c.Dead[0].Status)
	require.Contains(t, c.Dead[0].Reason, "bad activity")
}

func TestOutboxResumesFromTheStoredCursor(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	first := bridge.NewHub(store, bridge.HubConfig{DeliveryTimeout: time.Second}, zerolog.Nop())
	down := &flaky{recorder: recorder{name: "botframework"}}
	down.setDown(&bridge.DeliveryError{Leg: "bot", Retryable: true, Err: errors.New("connection refused")})
	first.Register(&recorder{name: "directline"})
	first.Register(down)
	_, _, err := first.Start(ctx, "c", customerLeg("c"))
	require.NoError(t, err)
	for i := range 3 {
		_, err := first.Receive(ctx, customerLeg("c"), say(fmt.Sprint("m", i)), "")
		require.Error(t, err)
	}
	first.Close() // the process dies with three deliveries pending

	pending, err := store.Pending(ctx)
	require.NoError(t, err)
	require.Equal(t, []bridge.PendingLeg{{ConversationID: "c", Leg: "botframework/c", Cursor: -1, Last: 2}}, pending)

	second := bridge.NewHub(store, bridge.HubConfig{DeliveryTimeout: time.Second}, zerolog.Nop())
	t.Cleanup(second.Close)
	bot := &recorder{name: "botframework"}
	second.Register(&recorder{name: "directline"})
	second.Register(bot)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = second.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	require.Eventually(t, func() bool { return len(messages(bot.sent())) == 3 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"m0", "m1", "m2"}, messages(bot.sent()))
	require.Equal(t, "c|0000000", bot.sent()[2].ID, "under the ids the log gave them")
	require.Eventually(t, func() bool { p, _ := store.Pending(ctx); return len(p) == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestReceiveIsIdempotentByKey(t *testing.T) {
	ctx := context.Background()
	hub, _, bot := newHub(t, time.Second)
	_, _, err := hub.Start(ctx, "c", customerLeg("c"))
	require.NoError(t, err)
	first, err := hub.Receive(ctx, customerLeg("c"), say("once"), "client-1")
	require.NoError(t, err)
	again, err := hub.Receive(ctx, customerLeg("c"), say("once"), "client-1")
	require.NoError(t, err)
	require.Equal(t, first, again, "a repeated key is the first record")
	require.Equal(t, []string{"once"}, messages(bot.sent()))
}

func TestConcurrentStartsCreateOneConversation(t *testing.T) {
	ctx := context.Background()
	hub, _, _ := newHub(t, time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := hub.Start(ctx, "same", customerLeg("same"))
			require.NoError(t, err)
			if ok {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, created)
}

// turnBot is a bot that acts from inside its turn: when it is sent the customer's "go", it
// calls act (which calls back into the Hub, as a bot's reply to the Connector does) before its
// delivery returns.
type turnBot struct {
	recorder
	act func(ctx context.Context)
}

func (b *turnBot) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	if a.Type == activity.TypeMessage && a.Text == "go" && b.act != nil {
		b.act(ctx)
	}
	return b.recorder.Send(ctx, to, a)
}

// blockingDesk is a contact center whose Escalate waits until released.
type blockingDesk struct {
	desk
	entered, release chan struct{}
}

func (d *blockingDesk) Escalate(ctx context.Context, c *bridge.Conversation, e *handoff.Escalation) (bridge.Leg, bridge.State, error) {
	close(d.entered)
	select {
	case <-d.release:
	case <-ctx.Done():
		return bridge.Leg{}, "", ctx.Err()
	}
	return d.desk.Escalate(ctx, c, e)
}

// TestTurnsAndEndsNeverDeadlock: a bot that ends or escalates inside its own turn while the
// conversation is ended from elsewhere (an agent, the inactivity timer, the customer) finishes
// within the delivery timeout, in each interleaving forced here, and every leg hears the end once.
func TestTurnsAndEndsNeverDeadlock(t *testing.T) {
	const timeout = 2 * time.Second
	type fixture struct {
		hub       *bridge.Hub
		bot       *turnBot
		customer  *recorder
		desk      *blockingDesk
		botLeg    bridge.Leg
		endedFrom chan error
	}
	setup := func(t *testing.T) *fixture {
		f := &fixture{hub: bridge.NewHub(memory.New(), bridge.HubConfig{DeliveryTimeout: timeout, EscalationChannel: "desk"}, zerolog.Nop()),
			bot: &turnBot{recorder: recorder{name: "botframework"}}, customer: &recorder{name: "directline"},
			desk:      &blockingDesk{desk: desk{recorder: recorder{name: "desk"}}, entered: make(chan struct{}), release: make(chan struct{})},
			endedFrom: make(chan error, 1)}
		t.Cleanup(f.hub.Close)
		f.hub.Register(f.customer)
		f.hub.Register(f.bot)
		f.hub.Register(f.desk)
		c, _, err := f.hub.Start(context.Background(), "c", customerLeg("c"))
		require.NoError(t, err)
		f.botLeg = c.Bot
		return f
	}
	eoc := func() *activity.Activity {
		return &activity.Activity{Type: activity.TypeEndOfConversation, Code: "completedSuccessfully"}
	}
	initiate := func() *activity.Activity {
		a, err := activity.Decode([]byte(handoffInitiate))
		require.NoError(t, err)
		return a
	}
	finishes := func(t *testing.T, what string, fn func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- fn() }()
		select {
		case <-done:
		case <-time.After(timeout + time.Second):
			t.Fatalf("%s did not finish within the delivery timeout", what)
		}
	}
	ended := func(t *testing.T, f *fixture) {
		t.Helper()
		c, err := f.hub.Conversation(context.Background(), "c")
		require.NoError(t, err)
		require.Equal(t, bridge.StateEnded, c.State)
		require.NoError(t, f.hub.Wait(context.Background()))
		n := 0
		for _, a := range f.customer.sent() {
			if a.Type == activity.TypeEndOfConversation {
				n++
			}
		}
		require.Equal(t, 1, n, "the customer hears one end")
	}
	ctx := context.Background()

	// turnThenEnd runs the customer's "go" turn, which must finish within the delivery
	// timeout, then waits up to wait for the end made from elsewhere to return.
	turnThenEnd := func(t *testing.T, f *fixture, wait time.Duration) {
		t.Helper()
		finishes(t, "the customer's turn", func() error {
			_, err := f.hub.Receive(ctx, customerLeg("c"), say("go"), "")
			return err
		})
		select {
		case err := <-f.endedFrom:
			require.NoError(t, err)
		case <-time.After(wait):
			t.Fatal("the end made from elsewhere did not finish")
		}
	}
	stateIs := func(f *fixture, want bridge.State) func() bool {
		return func() bool {
			c, err := f.hub.Conversation(ctx, "c")
			return err == nil && c.State == want
		}
	}

	for _, order := range []string{"end first", "bot first", "together"} {
		t.Run("the bot ends in its turn while the system ends: "+order, func(t *testing.T) {
			f := setup(t)
			endBySystem := func() { f.endedFrom <- f.hub.End(ctx, "c", bridge.RoleSystem, handoff.End{Reason: handoff.EndTimeout}) }
			f.bot.act = func(ctx context.Context) {
				switch order {
				case "end first": // the timer fires and ends the conversation before the bot's end arrives
					go endBySystem()
					require.Eventually(t, stateIs(f, bridge.StateEnded), timeout, time.Millisecond)
				case "together":
					go endBySystem()
				}
				_, _ = f.hub.Receive(ctx, f.botLeg, eoc(), "")
				if order == "bot first" {
					go endBySystem()
				}
			}
			turnThenEnd(t, f, timeout)
			ended(t, f)
		})
	}

	for _, order := range []string{"before the escalation", "while the contact center works", "after the escalation"} {
		t.Run("the bot escalates in its turn while the customer ends: "+order, func(t *testing.T) {
			f := setup(t)
			customerEnds := func() {
				_, err := f.hub.Receive(ctx, customerLeg("c"), &activity.Activity{Type: activity.TypeEndOfConversation, From: &activity.ChannelAccount{ID: "u"}}, "")
				f.endedFrom <- err
			}
			f.bot.act = func(ctx context.Context) {
				switch order {
				case "before the escalation":
					go customerEnds()
					require.Eventually(t, stateIs(f, bridge.StateEnded), timeout, time.Millisecond)
					close(f.desk.release)
				case "while the contact center works":
					go func() {
						<-f.desk.entered
						go customerEnds()
						require.Eventually(t, stateIs(f, bridge.StateEnded), timeout, time.Millisecond)
						close(f.desk.release)
					}()
				case "after the escalation":
					close(f.desk.release)
				}
				_, _ = f.hub.Receive(ctx, f.botLeg, initiate(), "")
				if order == "after the escalation" {
					go customerEnds()
				}
			}
			turnThenEnd(t, f, 2*timeout)
			require.True(t, stateIs(f, bridge.StateEnded)())
			require.NoError(t, f.hub.Wait(ctx))
			if order != "before the escalation" {
				var ends int
				for _, a := range f.desk.sent() {
					if a.Type == activity.TypeEndOfConversation {
						ends++
					}
				}
				require.GreaterOrEqual(t, ends, 1, "the contact center that took the conversation hears the end")
			}
		})
	}
}

func TestAnEscalationLeftInProgressByACrashGoesBackToTheBot(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	cfg := bridge.HubConfig{DeliveryTimeout: 100 * time.Millisecond, EscalationChannel: "desk", InactivityTick: 10 * time.Millisecond}
	first := bridge.NewHub(store, cfg, zerolog.Nop())
	stuck := &blockingDesk{desk: desk{recorder: recorder{name: "desk"}}, entered: make(chan struct{}), release: make(chan struct{})}
	first.Register(&recorder{name: "directline"})
	first.Register(&recorder{name: "botframework"})
	first.Register(stuck)
	c, _, err := first.Start(ctx, "c", customerLeg("c"))
	require.NoError(t, err)
	_, err = first.Receive(ctx, customerLeg("c"), say("help"), "")
	require.NoError(t, err)
	a, err := activity.Decode([]byte(handoffInitiate))
	require.NoError(t, err)
	go func() { _, _ = first.Receive(context.Background(), c.Bot, a, "") }()
	<-stuck.entered // the contact center is being called when the bridge dies
	got, err := store.Conversation(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, bridge.StateEscalating, got.State)
	first.Close()

	second := bridge.NewHub(store, cfg, zerolog.Nop())
	t.Cleanup(second.Close)
	bot := &recorder{name: "botframework"}
	second.Register(&recorder{name: "directline"})
	second.Register(bot)
	second.Register(&desk{recorder: recorder{name: "desk"}})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = second.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done; close(stuck.release) })
	require.Eventually(t, func() bool {
		c, err := store.Conversation(ctx, "c")
		return err == nil && c.State == bridge.StateBot
	}, 5*time.Second, 10*time.Millisecond, "the bot has the conversation back")
	require.Eventually(t, func() bool {
		for _, a := range bot.sent() {
			if a.Name == "handoff.status" {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "and is told the handoff failed")
}
