package redis

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// roundTrips counts the client's round trips to Redis: a command, or a pipeline (one write,
// one read of all the replies).
type roundTrips struct {
	n    atomic.Int64
	mu   sync.Mutex
	cmds map[string]int // command name -> how often, for the failure message
}

func (r *roundTrips) note(names ...string) {
	r.n.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		r.cmds[n]++
	}
}

func (r *roundTrips) reset() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cmds
	r.cmds = map[string]int{}
	r.n.Store(0)
	return old
}

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.note(cmd.Name())
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		names := make([]string, len(cmds))
		for i, c := range cmds {
			names[i] = c.Name()
		}
		r.note(names...)
		return next(ctx, cmds)
	}
}

var _ goredis.Hook = (*roundTrips)(nil)

// echoBot answers each message it is delivered with a reply to it (ReplyToID set, as a
// Bot Framework bot's reply is: botframework.md, "replyToId"), received through the Hub as the
// bot channel's inbound side would.
type echoBot struct {
	hub *bridge.Hub
}

func (b *echoBot) Name() string { return "botframework" }

func (b *echoBot) Send(_ context.Context, leg bridge.Leg, a *activity.Activity) (string, error) {
	if a.Type == activity.TypeMessage {
		go func() {
			r := &activity.Activity{Type: activity.TypeMessage, Text: "re: " + a.Text, ReplyToID: a.ID}
			_, _ = b.hub.Receive(context.Background(), leg, r, "")
		}()
	}
	return a.ID, nil
}

// streamChan is a customer channel whose legs read the log themselves, as Direct Line's do.
type streamChan struct{}

func (streamChan) Name() string { return "directline" }
func (streamChan) Send(context.Context, bridge.Leg, *activity.Activity) (string, error) {
	return "", nil
}
func (streamChan) ReadsLog() bool { return true }

// readStream reads the conversation's log as a Direct Line stream does (Since, then Watch for
// more) and sends each record's text on got, until ctx ends.
func readStream(ctx context.Context, hub *bridge.Hub, convID string, got chan<- string) {
	after := int64(-1)
	for ctx.Err() == nil {
		recs, err := hub.Since(ctx, convID, after, 16)
		if err != nil {
			return
		}
		for _, r := range recs {
			after = r.Seq
			if r.Activity.Type == activity.TypeMessage {
				got <- r.Activity.Text
			}
		}
		if len(recs) > 0 {
			continue
		}
		woken := make(chan struct{})
		stop := hub.Watch(convID, after, func() { close(woken) })
		select {
		case <-woken:
		case <-ctx.Done():
			stop()
		}
	}
}

// TestRoundTripsPerExchange counts the round trips to Redis of one exchange on one instance,
// once warm: the customer's message received, appended and delivered to the bot, the bot's
// reply received and appended, both read by the customer's stream. It made 21 before issue 19's
// caches and pipelines (19 in the bridge's own exchange, whose stream does not read again once
// caught up: BENCHMARKS.md, "Performance round two"); 6 after.
func TestRoundTripsPerExchange(t *testing.T) {
	addr := server(t).(*goredis.Client).Options().Addr
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 8})
	t.Cleanup(func() { _ = rdb.Close() })
	rt := &roundTrips{cmds: map[string]int{}}
	rdb.AddHook(rt)
	s := open(t, rdb, "rt:")
	hub := bridge.NewHub(s, bridge.HubConfig{DeliveryTimeout: 5 * time.Second}, zerolog.Nop())
	t.Cleanup(hub.Close)
	hub.Register(&echoBot{hub: hub})
	hub.Register(streamChan{})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	customer := bridge.Leg{Channel: "directline", ConversationID: "rt1"}
	_, _, err := hub.Start(ctx, "rt1", customer)
	require.NoError(t, err)
	got := make(chan string, 64)
	go readStream(ctx, hub, "rt1", got)

	exchange := func(text string) {
		t.Helper()
		_, err := hub.Receive(ctx, customer, &activity.Activity{Type: activity.TypeMessage, Text: text}, "")
		require.NoError(t, err)
		for _, want := range []string{text, "re: " + text} {
			select {
			case g := <-got:
				require.Equal(t, want, g)
			case <-ctx.Done():
				t.Fatalf("no %q on the stream", want)
			}
		}
		// the bot's pump acknowledges and releases its lease after the reply was appended
		time.Sleep(20 * time.Millisecond)
	}
	for range 2 { // warm: the scripts loaded, the caches filled
		exchange("warm")
	}
	rt.reset()
	const n = 10
	for range n {
		exchange("hello")
	}
	perExchange := float64(rt.n.Load()) / n
	cmds := rt.reset()
	t.Logf("%.1f round trips per exchange; commands over %d exchanges: %v", perExchange, n, cmds)
	// 21 before; what is left: the append pipeline, the bot's outbox lease (acquire, ack,
	// release), the reply's append and the Last of its replyToId check.
	require.LessOrEqual(t, perExchange, 7.0, "round trips per exchange: %v", cmds)
}

// TestCachesAcrossInstances: what instance A answers from memory for a conversation it tracks
// (its log, its conversation, its legs; cache.go) follows the writes of instance B, on another
// client of the same Redis, once their hints are in; and a reader on A is woken for each.
func TestCachesAcrossInstances(t *testing.T) {
	rdb := server(t)
	ctx := context.Background()
	rdb2 := goredis.NewClient(&goredis.Options{Addr: rdb.(*goredis.Client).Options().Addr})
	t.Cleanup(func() { _ = rdb2.Close() })
	a, b := open(t, rdb, "cx:"), open(t, rdb2, "cx:")
	_, _, err := a.CreateConversation(ctx, legConv("c", "c"))
	require.NoError(t, err)
	_, _, err = a.Append(ctx, "c", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("0")})
	require.NoError(t, err)

	// A tracks c: a watcher once its subscription is live (the first Watch waits for it), then
	// reads that fill the caches
	a.Watch("c", 100, func() {})
	fired := make(chan struct{})
	a.Watch("c", 0, func() { close(fired) })
	c1, err := a.ConversationByLeg(ctx, "directline", "c")
	require.NoError(t, err)
	recs, err := a.Since(ctx, "c", -1, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Eventually(t, func() bool { _, ok := a.cachedConv("c"); return ok }, 2*time.Second, 5*time.Millisecond, "A keeps no copy of c")

	// B appends: A's watcher wakes, and A's Since has the record (from Redis or its track)
	_, _, err = b.Append(ctx, "c", bridge.Entry{From: bridge.RoleBot, Activity: msg("1")})
	require.NoError(t, err)
	waitFired(t, fired, 2*time.Second, "A's watcher not woken by B's append")
	recs, err = a.Since(ctx, "c", 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "1", recs[0].Activity.Text)

	// B puts c: A's copy follows once the put's hint is in
	cb, err := b.Conversation(ctx, "c")
	require.NoError(t, err)
	cb.BotGreeted = true
	require.NoError(t, b.PutConversation(ctx, cb))
	require.Eventually(t, func() bool {
		c, err := a.Conversation(ctx, "c")
		return err == nil && c.Version == cb.Version && c.BotGreeted
	}, 2*time.Second, 5*time.Millisecond, "A's copy of c never followed B's put")

	// B adds a leg: A finds c by it at once (its copy lacks the leg: read again), and A's copy
	// follows the put once its hint is in
	c2, err := b.Conversation(ctx, "c")
	require.NoError(t, err)
	c2.Agent = &bridge.Leg{Channel: "desk", ConversationID: "d1"}
	require.NoError(t, b.PutConversation(ctx, c2))
	got, err := a.ConversationByLeg(ctx, "desk", "d1")
	require.NoError(t, err)
	require.Equal(t, c2.Version, got.Version)
	require.Eventually(t, func() bool {
		c, err := a.Conversation(ctx, "c")
		return err == nil && c.Version == c2.Version && c.Agent != nil
	}, 2*time.Second, 5*time.Millisecond, "A's copy of c never followed B's put")
	require.Greater(t, c2.Version, c1.Version)

	// A puts from a stale copy: a conflict, and A reads c again
	c1.State = bridge.StateEnded
	require.ErrorIs(t, a.PutConversation(ctx, c1), bridge.ErrVersionConflict)
	cur, err := a.Conversation(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, c2.Version, cur.Version)

	// B erases c: A forgets it
	require.NoError(t, b.EraseConversation(ctx, "c"))
	require.Eventually(t, func() bool {
		_, err := a.Conversation(ctx, "c")
		return errors.Is(err, bridge.ErrUnknownConversation)
	}, 2*time.Second, 5*time.Millisecond, "A still answers an erased conversation")
	_, err = a.ConversationByLeg(ctx, "directline", "c")
	require.ErrorIs(t, err, bridge.ErrUnknownConversation)
}

// TestLightTouchKeysExpire: the scripts between two full refreshes of a conversation's TTL
// (luaTouch) give the keys they create a TTL, so that no key of the conversation outlives it;
// and they leave the TTL of the others as it was.
func TestLightTouchKeysExpire(t *testing.T) {
	ctx := context.Background()
	rdb := server(t)
	s, err := Open(ctx, Options{Client: rdb, Prefix: "light:", TTL: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, _, err = s.CreateConversation(ctx, legConv("c", "b"))
	require.NoError(t, err)
	require.Less(t, s.touchTTL("c"), int64(0), "a light touch right after the creation")
	// a TTL lowered by hand shows whether a light touch refreshes it
	require.NoError(t, rdb.PExpire(ctx, s.key(kConv, "c"), 10*time.Minute).Err())
	_, _, err = s.Append(ctx, "c", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("x"), To: []string{"botframework/b"}, Key: "k1"})
	require.NoError(t, err)
	require.NoError(t, s.Ack(ctx, "c", "botframework/b", 0))
	require.NoError(t, s.SetTimer(ctx, "c", "t", time.Now().Add(time.Hour)))
	require.NoError(t, s.PutValue(ctx, "c", "k", []byte("v")))
	require.NoError(t, s.PutBlob(ctx, "c", "f", bridge.Blob{ContentType: "text/plain", Data: []byte("d")}))
	tok, ok, err := s.Acquire(ctx, "c", bridge.OutboxLease("botframework/b"), time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.AckFenced(ctx, "c", "botframework/b", 0, tok))
	c, err := s.Conversation(ctx, "c")
	require.NoError(t, err)
	require.NoError(t, s.PutConversation(ctx, c))
	for _, k := range append(s.convKeys("c"), s.fenceKey("c")) {
		ttl, err := rdb.PTTL(ctx, k).Result()
		require.NoError(t, err)
		require.Positive(t, ttl, "%s has a TTL", k)
		if k == s.key(kConv, "c") {
			require.LessOrEqual(t, ttl, 10*time.Minute, "a light touch left the conversation's TTL as it was")
		}
	}
}
