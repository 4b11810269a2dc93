package desk

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	redisstore "github.com/bfbridge/bfbridge/bridge/store/redis"
	"github.com/bfbridge/bfbridge/channels/desk/routing"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// acceptCount counts the Hub's Accepts the desks of all instances make.
type countingHub struct {
	*bridge.Hub
	accepts *atomic.Int32
}

func (h countingHub) Accept(ctx context.Context, convID string, agent bridge.Leg) error {
	h.accepts.Add(1)
	return h.Hub.Accept(ctx, convID, agent)
}

// sharedDesk is one bridge instance with the sandbox bot and the desk, on a store of its own
// client of the Redis at addr (shared with the other instances).
func sharedDesk(t *testing.T, addr string, accepts *atomic.Int32) (*bridge.Hub, *Desk, *redisstore.Store) {
	return sharedDeskWith(t, addr, accepts, presenceOnly())
}

func sharedDeskWith(t *testing.T, addr string, accepts *atomic.Int32, cfg *routing.Config) (*bridge.Hub, *Desk, *redisstore.Store) {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	store, err := redisstore.Open(context.Background(), redisstore.Options{Client: rdb, Prefix: "desk:"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	hub := bridge.NewHub(store, bridge.HubConfig{BotChannel: BotChannelName, EscalationChannel: ChannelName, DeliveryTimeout: 5 * time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	bot := NewBot(hub, DefaultScript(), zerolog.Nop())
	t.Cleanup(bot.Close)
	d, err := New(countingHub{hub, accepts}, fakeTokens{}, Config{Routing: cfg, TickInterval: 50 * time.Millisecond, Leases: store}, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(d.Close)
	hub.Register(&customer{})
	hub.Register(bot)
	hub.Register(d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return hub, d, store
}

// Two instances' desks route conversations escalated on either: each decision is made once
// across them, so the agents' capacity holds across instances (without it, each instance
// would offer each agent up to its capacity); an offer made by one instance is accepted
// through the other, and both see the same routing.
func TestRoutingDecidedOnceAcrossInstances(t *testing.T) {
	ctx := context.Background()
	addr := testutil.RedisServer(t)
	var accepts atomic.Int32
	hubA, deskA, store := sharedDesk(t, addr, &accepts)
	hubB, deskB, _ := sharedDesk(t, addr, &accepts)
	hubs := []*bridge.Hub{hubA, hubB}

	// the General queue's agents hold 2 + 2 + 3 conversations (alex, sam, nina)
	const n = 10
	capacity := 0
	for _, a := range deskA.engine.Snapshot().Agents {
		_, c := loadOf(a)
		capacity += c
	}
	require.Less(t, capacity, n, "more conversations than the agents can hold")
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			hub := hubs[i%2]
			id := fmt.Sprint("c", i)
			leg := bridge.Leg{Channel: "directline", ConversationID: id, User: activity.ChannelAccount{ID: "u-" + id, Name: "Uma " + id}}
			if _, _, err := hub.Start(ctx, id, leg); err != nil {
				t.Error(err)
				return
			}
			if _, err := hub.Receive(ctx, leg, &activity.Activity{Type: "message", Text: "I want to talk to a human", From: &activity.ChannelAccount{ID: "u-" + id}}, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	stages := func() map[routing.Stage][]string {
		out := map[routing.Stage][]string{}
		for i := range n {
			id := fmt.Sprint("c", i)
			st := storedStage(t, store, id)
			out[st] = append(out[st], id)
		}
		return out
	}
	require.Eventually(t, func() bool {
		s := stages()
		return len(s[routing.StageOffered])+len(s[routing.StageWaiting]) == n
	}, 10*time.Second, 20*time.Millisecond, "every conversation in routing")
	time.Sleep(300 * time.Millisecond) // several ticks of both instances: no more offers come
	s := stages()
	require.Len(t, s[routing.StageOffered], capacity, "offers within the agents' capacity: %v", s)
	require.Len(t, s[routing.StageWaiting], n-capacity)

	// both instances' engines agree, and no agent holds more than its capacity
	require.Eventually(t, func() bool {
		for _, c := range deskA.engine.Export().Conversations {
			o, ok := deskB.engine.Conversation(c.ID)
			if !ok || o.Stage != c.Stage || o.Agent != c.Agent {
				return false
			}
		}
		return len(deskA.engine.Export().Conversations) == n
	}, 5*time.Second, 20*time.Millisecond, "the instances' routing agrees")
	for _, a := range deskB.engine.Snapshot().Agents {
		load, c := loadOf(a)
		require.LessOrEqual(t, load, c, "agent %s", a.ID)
	}

	// an offer made by whichever instance, accepted by its agent through both instances at
	// once (two pages open): the Hub's Accept happens once
	var offer routing.ConversationState
	for _, c := range deskA.engine.Export().Conversations {
		if c.Stage == routing.StageOffered {
			offer = c
			break
		}
	}
	require.NotEmpty(t, offer.ID)
	for _, d := range []*Desk{deskA, deskB} {
		wg.Go(func() {
			if err := d.command(ctx, offer.Agent, deskMsg{Type: "accept", ConversationID: offer.ID}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		c, err := hubB.Conversation(ctx, offer.ID)
		return err == nil && c.State == bridge.StateAgent && storedStage(t, store, offer.ID) == routing.StageAssigned
	}, 5*time.Second, 20*time.Millisecond, "accepted")
	require.Eventually(t, func() bool { return deskA.holds(offer.Agent, offer.ID) && deskB.holds(offer.Agent, offer.ID) }, 5*time.Second, 20*time.Millisecond,
		"both instances know")
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, int32(1), accepts.Load(), "one Accept")
}

// An agent's page on instance B gets the customer's words that instance A received and
// delivered, and its own replies, once each, in order.
func TestAgentPageOnAnotherInstance(t *testing.T) {
	ctx := context.Background()
	addr := testutil.RedisServer(t)
	var accepts atomic.Int32
	hubA, _, _ := sharedDesk(t, addr, &accepts)
	_, deskB, _ := sharedDesk(t, addr, &accepts)
	leg := bridge.Leg{Channel: "directline", ConversationID: "c", User: activity.ChannelAccount{ID: "u", Name: "Uma"}}
	_, _, err := hubA.Start(ctx, "c", leg)
	require.NoError(t, err)
	// the agent's page is open on B
	var agent string
	require.Eventually(t, func() bool {
		if _, err := hubA.Receive(ctx, leg, &activity.Activity{Type: "message", Text: "I want to talk to a human", From: &activity.ChannelAccount{ID: "u"}}, "x"); err != nil {
			return false
		}
		c, ok := deskB.engine.Conversation("c")
		agent = c.Agent
		return ok && c.Stage == routing.StageOffered
	}, 5*time.Second, 20*time.Millisecond, "offered, as B knows")
	page := &agentSocket{agent: agent, out: make(chan deskMsg, 256)}
	deskB.mu.Lock()
	deskB.socks[agent] = map[*agentSocket]struct{}{page: {}}
	deskB.mu.Unlock()
	next := func(typ string) deskMsg {
		t.Helper()
		for {
			select {
			case m := <-page.out:
				if m.Type == typ {
					return m
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no %q message on the page", typ)
			}
		}
	}
	view := next("conversation")
	require.Equal(t, "c", view.Conversation.ID)
	require.NoError(t, deskB.command(ctx, agent, deskMsg{Type: "accept", ConversationID: "c"}))
	require.Eventually(t, func() bool { c, err := hubA.Conversation(ctx, "c"); return err == nil && c.State == bridge.StateAgent }, 5*time.Second, 20*time.Millisecond)

	var got []string
	for i := range 3 {
		_, err := hubA.Receive(ctx, leg, &activity.Activity{Type: "message", Text: fmt.Sprint("customer ", i), From: &activity.ChannelAccount{ID: "u"}}, "")
		require.NoError(t, err)
		require.NoError(t, deskB.command(ctx, agent, deskMsg{Type: "send", ConversationID: "c", Text: fmt.Sprint("agent ", i)}))
	}
	for len(got) < 6 {
		m := next("activity")
		require.Equal(t, "c", m.ConversationID)
		if m.Entry.Role != "system" { // "… has joined the conversation."
			got = append(got, m.Entry.Role+": "+m.Entry.Text)
		}
	}
	want := []string{"customer: customer 0", "agent: agent 0", "customer: customer 1", "agent: agent 1", "customer: customer 2", "agent: agent 2"}
	require.Equal(t, want, got)
	select {
	case m := <-page.out:
		if m.Type == "activity" {
			t.Fatalf("a line pushed twice: %+v", m.Entry)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

// Desk presence across instances: the agent's page is open on B only; a conversation escalated
// on A is offered to that agent (the desk connection is in the shared routing state), and to
// nobody else; when the page closes on B, the agent is signed out after the grace, whichever
// instance's clock notices.
func TestDeskPresenceAcrossInstances(t *testing.T) {
	ctx := context.Background()
	addr := testutil.RedisServer(t)
	var accepts atomic.Int32
	cfg := func() *routing.Config { // the same configuration on both, with a short grace
		c := routing.DefaultConfig()
		c.DeskGrace = time.Second
		return c
	}
	hubA, deskA, _ := sharedDeskWith(t, addr, &accepts, cfg())
	_, deskB, _ := sharedDeskWith(t, addr, &accepts, cfg())

	task := deskB.deskConnected(ctx, "sam")
	deskB.enqueue(task)
	page := &agentSocket{agent: "sam", out: make(chan deskMsg, 256)}
	deskB.mu.Lock()
	deskB.socks["sam"] = map[*agentSocket]struct{}{page: {}}
	deskB.mu.Unlock()

	leg := bridge.Leg{Channel: "directline", ConversationID: "c", User: activity.ChannelAccount{ID: "u", Name: "Uma"}}
	_, _, err := hubA.Start(ctx, "c", leg)
	require.NoError(t, err)
	_, err = hubA.Receive(ctx, leg, &activity.Activity{Type: "message", Text: "I want to talk to a human", From: &activity.ChannelAccount{ID: "u"}}, "")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c, ok := deskA.engine.Conversation("c")
		return ok && c.Stage == routing.StageOffered && c.Agent == "sam"
	}, 5*time.Second, 20*time.Millisecond, "offered to the only agent with a desk open, on the other instance")

	// the page on B closes: after the grace, Sam is signed out and the offer waits again
	deskB.mu.Lock()
	delete(deskB.socks["sam"], page)
	deskB.mu.Unlock()
	deskB.deskClosed("sam")
	require.Eventually(t, func() bool {
		c, ok := deskA.engine.Conversation("c")
		return ok && c.Stage == routing.StageWaiting && deskA.agentView("sam").Presence == "Offline"
	}, 5*time.Second, 20*time.Millisecond, "signed out, the offer back in the queue")
}
