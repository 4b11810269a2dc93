package redis

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// quietBot is a bot channel that takes what it is sent and answers nothing itself.
type quietBot struct {
	mu  sync.Mutex
	got []*activity.Activity
}

func (b *quietBot) Name() string { return "botframework" }

func (b *quietBot) Send(_ context.Context, _ bridge.Leg, a *activity.Activity) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, a)
	return "", nil
}

func (b *quietBot) invoke() *activity.Activity {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.got {
		if a.Type == activity.TypeInvoke {
			return a
		}
	}
	return nil
}

type nobody struct{ name string }

func (n nobody) Name() string { return n.name }
func (nobody) Send(context.Context, bridge.Leg, *activity.Activity) (string, error) {
	return "", nil
}

// Hub.Invoke across instances: the customer's invoke is taken by one bridge instance, and the
// bot's answer is recorded by another instance on the same Redis (the one whose Connector API
// the bot answered, or that delivered it); the first instance's waiting POST gets the answer
// through the store's cross-instance wake-ups (bridge/invoke.go).
func TestInvokeAcrossInstances(t *testing.T) {
	rdb := server(t)
	ctx := context.Background()
	storeA, storeB := open(t, rdb, "inv:"), open(t, rdb, "inv:")
	hubA := bridge.NewHub(storeA, bridge.HubConfig{DeliveryTimeout: 5 * time.Second}, zerolog.Nop())
	t.Cleanup(hubA.Close)
	hubB := bridge.NewHub(storeB, bridge.HubConfig{DeliveryTimeout: 5 * time.Second}, zerolog.Nop())
	t.Cleanup(hubB.Close)
	bot := &quietBot{}
	hubA.Register(nobody{"directline"})
	hubA.Register(bot)
	hubB.Register(nobody{"directline"})
	hubB.Register(nobody{"botframework"})
	customer := bridge.Leg{Channel: "directline", ConversationID: "x1"}
	c, _, err := hubA.Start(ctx, "x1", customer)
	require.NoError(t, err)

	recorded := make(chan error, 1)
	go func() {
		var inv *activity.Activity
		for inv = bot.invoke(); inv == nil; inv = bot.invoke() {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // after A has started waiting
		ir, err := bridge.NewInvokeResponse(inv, c.Bot, 200, []byte(`{"id":"ter-1","connectionName":"aad"}`))
		if err == nil {
			_, err = hubB.Receive(ctx, c.Bot, ir, bridge.InvokeResponseKey(inv.ID))
		}
		recorded <- err
	}()
	start := time.Now()
	id, resp, err := hubA.Invoke(ctx, customer, &activity.Activity{Type: activity.TypeInvoke, Name: "signin/tokenExchange",
		From: &activity.ChannelAccount{ID: "u1"}, Value: json.RawMessage(`{"id":"ter-1","connectionName":"aad","token":"t"}`)}, "")
	require.NoError(t, err)
	require.NoError(t, <-recorded)
	require.Equal(t, "x1|0000000", id)
	require.Equal(t, 200, resp.Status)
	require.JSONEq(t, `{"id":"ter-1","connectionName":"aad"}`, string(resp.Body))
	require.Less(t, time.Since(start), 4*time.Second, "woken by the other instance's append, not by the timeout")
}
