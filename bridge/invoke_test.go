package bridge_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
)

func signinInvoke(token string) *activity.Activity {
	return &activity.Activity{Type: activity.TypeInvoke, Name: "signin/tokenExchange", From: &activity.ChannelAccount{ID: "u1"},
		Value: json.RawMessage(`{"id":"ter-1","connectionName":"aad","token":"` + token + `"}`)}
}

// The answer to an invoke is read from the log, not from the process that delivered it: here
// the delivering channel records nothing itself, and another Hub on the same store (another
// instance of the bridge) records the bot's answer after a while; the caller's Invoke gets it
// through the store's Watch. An invokeResponse the customer forges is not the bot's answer.
func TestInvokeAnswerFromAnotherInstance(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	hub, _, bot := newHubOn(t, store, 2*time.Second)
	other := bridge.NewHub(store, bridge.HubConfig{DeliveryTimeout: 2 * time.Second}, zerolog.Nop())
	t.Cleanup(other.Close)
	other.Register(&recorder{name: "directline"})
	other.Register(&recorder{name: "botframework"})
	c, _, err := hub.Start(ctx, "inv1", customerLeg("inv1"))
	require.NoError(t, err)

	answered := make(chan error, 1)
	go func() {
		// The bot's answer arrives once the invoke is in the log, through the other instance,
		// after a customer's forged answer.
		var inv *activity.Activity
		for inv == nil {
			if inv = invokeOf(bot.sent()); inv == nil {
				time.Sleep(time.Millisecond)
			}
		}
		forged, _ := bridge.NewInvokeResponse(inv, c.Customer, 200, nil)
		if _, err := other.Receive(ctx, c.Customer, forged, ""); err != nil {
			answered <- err
			return
		}
		time.Sleep(100 * time.Millisecond)
		ir, err := bridge.NewInvokeResponse(inv, c.Bot, 412, []byte(`{"id":"ter-1","failureDetail":"unable to exchange token"}`))
		if err == nil {
			_, err = other.Receive(ctx, c.Bot, ir, bridge.InvokeResponseKey(inv.ID))
		}
		answered <- err
	}()
	id, resp, err := hub.Invoke(ctx, customerLeg("inv1"), signinInvoke("t"), "")
	require.NoError(t, err)
	require.NoError(t, <-answered)
	require.Equal(t, 412, resp.Status, "the bot's answer, not the customer's")
	require.False(t, resp.OK())
	require.JSONEq(t, `{"id":"ter-1","failureDetail":"unable to exchange token"}`, string(resp.Body))
	require.Equal(t, "inv1|0000000", id)
}

// No answer within the delivery timeout: ErrNoInvokeResponse, the invoke in the log all the same
// (delivered, or to be delivered: a late answer is recorded where nobody waits any more).
func TestInvokeWithoutAnswer(t *testing.T) {
	ctx := context.Background()
	hub, _, bot := newHub(t, 300*time.Millisecond)
	_, _, err := hub.Start(ctx, "inv2", customerLeg("inv2"))
	require.NoError(t, err)
	start := time.Now()
	id, _, err := hub.Invoke(ctx, customerLeg("inv2"), signinInvoke("t"), "")
	require.ErrorIs(t, err, bridge.ErrNoInvokeResponse)
	require.NotEmpty(t, id)
	require.Less(t, time.Since(start), 2*time.Second, "bounded by the delivery timeout")
	inv := invokeOf(bot.sent())
	require.NotNil(t, inv, "the bot got the invoke")

	// The customer's own channel is never sent the invoke (it carries a token) nor its answer.
	require.False(t, bridge.CustomerVisible(inv))
	ir, err := bridge.NewInvokeResponse(inv, bridge.Leg{Channel: "botframework", ConversationID: "inv2"}, 200, nil)
	require.NoError(t, err)
	require.False(t, bridge.CustomerVisible(ir))
	require.True(t, bridge.CustomerVisible(&activity.Activity{Type: activity.TypeInvoke, Name: "adaptiveCard/action"}), "other invokes pass")
}

// A canceled caller stops waiting at once.
func TestAwaitInvokeResponseCanceled(t *testing.T) {
	hub, _, _ := newHub(t, time.Second)
	_, _, err := hub.Start(context.Background(), "inv3", customerLeg("inv3"))
	require.NoError(t, err)
	id, err := hub.Receive(context.Background(), customerLeg("inv3"), signinInvoke("t"), "")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = hub.AwaitInvokeResponse(ctx, id)
	require.ErrorIs(t, err, bridge.ErrNoInvokeResponse)
	_, err = hub.AwaitInvokeResponse(context.Background(), "not-an-id")
	require.ErrorIs(t, err, bridge.ErrNoInvokeResponse)
}

func invokeOf(sent []*activity.Activity) *activity.Activity {
	for _, a := range sent {
		if a.Type == activity.TypeInvoke {
			return a
		}
	}
	return nil
}

// answeringBot answers every invoke with 200, recording its answer as a Connector channel does.
type answeringBot struct {
	recorder
	hub *bridge.Hub
}

func (b *answeringBot) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	if _, err := b.recorder.Send(ctx, to, a); err != nil || a.Type != activity.TypeInvoke {
		return "", err
	}
	ir, err := bridge.NewInvokeResponse(a, to, 200, nil)
	if err == nil {
		_, err = b.hub.Receive(ctx, to, ir, bridge.InvokeResponseKey(a.ID))
	}
	return "", err
}

// An invoke whose bot was unreachable is not lost: the caller was told (its client shows the
// card), and the invoke, in the log, is delivered by the next process on the store (a restart)
// under the same id, where the bot's late answer is simply recorded. No crash test of the wait
// itself is needed: the waiting POST belongs to the client, which retries or shows the card.
func TestInvokeDeliveredAfterRestart(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	first, _, down := newHubOn(t, store, 300*time.Millisecond)
	down.fail = &bridge.DeliveryError{Leg: "botframework/inv4", Retryable: true, Err: context.DeadlineExceeded}
	_, _, err := first.Start(ctx, "inv4", customerLeg("inv4"))
	require.NoError(t, err)
	id, _, err := first.Invoke(ctx, customerLeg("inv4"), signinInvoke("t"), "")
	require.NotEmpty(t, id)
	var de *bridge.DeliveryError
	require.ErrorAs(t, err, &de, "the caller hears the bot could not be reached")
	first.Close() // the process stops

	second := bridge.NewHub(store, bridge.HubConfig{DeliveryTimeout: time.Second}, zerolog.Nop())
	t.Cleanup(second.Close)
	bot := &answeringBot{recorder: recorder{name: "botframework"}, hub: second}
	second.Register(&recorder{name: "directline"})
	second.Register(bot)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = second.Run(runCtx) }()
	waitCtx, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	resp, err := second.AwaitInvokeResponse(waitCtx, id)
	require.NoError(t, err, "the invoke reached the bot after the restart, and its answer is in the log")
	require.Equal(t, 200, resp.Status)
	inv := invokeOf(bot.sent())
	require.NotNil(t, inv)
	require.Equal(t, id, inv.ID, "under the same id")
}

// With a human agent on the conversation no bot answers an invoke: Invoke says so at once.
func TestInvokeWhileWithAnAgent(t *testing.T) {
	ctx := context.Background()
	hub, _, _ := newHub(t, 5*time.Second)
	hub.Register(&recorder{name: "desk"})
	_, _, err := hub.Start(ctx, "inv5", customerLeg("inv5"))
	require.NoError(t, err)
	_, err = hub.Update(ctx, "inv5", func(c *bridge.Conversation) error {
		c.State, c.Agent = bridge.StateAgent, &bridge.Leg{Channel: "desk", ConversationID: "inv5"}
		return nil
	})
	require.NoError(t, err)
	start := time.Now()
	id, _, err := hub.Invoke(ctx, customerLeg("inv5"), signinInvoke("t"), "")
	require.ErrorIs(t, err, bridge.ErrNoInvokeResponse)
	require.NotEmpty(t, id, "recorded, and relayed to the agent's side")
	require.Less(t, time.Since(start), 2*time.Second, "no wait for a bot that is not there")
}
