package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/storetest"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// server starts a redis-server of the test's own and returns a client of it, closed when the
// test ends.
func server(t *testing.T) goredis.UniversalClient {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: testutil.RedisServer(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, rdb.Ping(context.Background()).Err())
	return rdb
}

// open opens a store on rdb under prefix and closes it when the test ends.
func open(t *testing.T, rdb goredis.UniversalClient, prefix string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Client: rdb, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestContract(t *testing.T) {
	rdb := server(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) bridge.Store {
		return open(t, rdb, "test"+strconv.FormatInt(n.Add(1), 10)+":")
	}, storetest.WithReopen(func(t *testing.T, s bridge.Store) bridge.Store {
		prefix := s.(*Store).prefix
		require.NoError(t, s.Close())
		return open(t, rdb, prefix)
	}))
}

// TestLeaserContract runs the Leaser contract with two stores (two clients) on one Redis, as
// two bridge processes.
func TestLeaserContract(t *testing.T) {
	rdb := server(t)
	addr := rdb.(*goredis.Client).Options().Addr
	var n atomic.Int64
	storetest.RunLeaser(t, func(t *testing.T) (bridge.Store, bridge.Store) {
		prefix := "lease" + strconv.FormatInt(n.Add(1), 10) + ":"
		rdb2 := goredis.NewClient(&goredis.Options{Addr: addr})
		t.Cleanup(func() { _ = rdb2.Close() })
		return open(t, rdb, prefix), open(t, rdb2, prefix)
	})
}

// TestSharedValuesContract runs the SharedValues contract with two stores on one Redis.
func TestSharedValuesContract(t *testing.T) {
	rdb := server(t)
	rdb2 := goredis.NewClient(&goredis.Options{Addr: rdb.(*goredis.Client).Options().Addr})
	t.Cleanup(func() { _ = rdb2.Close() })
	storetest.RunSharedValues(t, func(t *testing.T) (bridge.Store, bridge.Store) {
		return open(t, rdb, "shared:"), open(t, rdb2, "shared:")
	})
}

// TestKeys checks that a conversation's keys share one hash tag whatever its id, and that they expire.
func TestKeys(t *testing.T) {
	rdb := server(t)
	ctx := context.Background()
	s, err := Open(ctx, Options{Client: rdb, Prefix: "k:", TTL: time.Hour})
	require.NoError(t, err)
	for _, id := range []string{"plain", "a}b", "{x}", "~y", ""} {
		for _, k := range s.convKeys(id) {
			require.Equal(t, slot(s.convKeys(id)[0]), slot(k), "%q: %s", id, k)
		}
	}
	require.NotEqual(t, s.convKeys("a}b")[0], s.convKeys("a")[0])
	c := &bridge.Conversation{ID: "ttl", Customer: bridge.Leg{Channel: "directline", ConversationID: "ttl"}}
	_, created, err := s.CreateConversation(ctx, c)
	require.NoError(t, err)
	require.True(t, created)
	_, _, err = s.Append(ctx, "ttl", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("x"), To: []string{"l"}})
	require.NoError(t, err)
	for _, k := range []int{kConv, kLog, kAddr} {
		d, err := rdb.PTTL(ctx, s.key(k, "ttl")).Result()
		require.NoError(t, err)
		require.Greater(t, d, 59*time.Minute, keyNames[k])
	}
	d, err := rdb.PTTL(ctx, s.legKey("directline/ttl")).Result()
	require.NoError(t, err)
	require.Greater(t, d, 59*time.Minute, "leg")

	_, err = Open(ctx, Options{Client: rdb, Prefix: "{x}"})
	require.Error(t, err)
}

// slot is the part of a key Redis Cluster hashes.
func slot(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						return key[i+1 : j]
					}
					return key
				}
			}
			return key
		}
	}
	return key
}

// TestTwoInstances checks that one store reads what another appended to the same Redis.
func TestTwoInstances(t *testing.T) {
	rdb := server(t)
	ctx := context.Background()
	a, b := open(t, rdb, "two:"), open(t, rdb, "two:")
	_, created, err := a.CreateConversation(ctx, &bridge.Conversation{ID: "c", Customer: bridge.Leg{Channel: "directline", ConversationID: "c"}})
	require.NoError(t, err)
	require.True(t, created)
	for i := range 3 {
		_, _, err := a.Append(ctx, "c", bridge.Entry{From: bridge.RoleBot, Activity: msg(fmt.Sprint(i))})
		require.NoError(t, err)
	}
	last, err := b.Last(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, int64(2), last)
	recs, err := b.Since(ctx, "c", 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	got, err := b.ConversationByLeg(ctx, "directline", "c")
	require.NoError(t, err)
	require.Equal(t, "c", got.ID)
	fired := make(chan struct{})
	b.Watch("c", 1, func() { close(fired) }) // already past: called at once
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("watch of a log another instance appended to")
	}
}

func msg(text string) *activity.Activity { return &activity.Activity{Type: "message", Text: text} }

func legConv(id string, legs ...string) *bridge.Conversation {
	c := &bridge.Conversation{ID: id, Customer: bridge.Leg{Channel: "directline", ConversationID: id}}
	if len(legs) > 0 {
		c.Bot = bridge.Leg{Channel: "botframework", ConversationID: legs[0]}
	}
	return c
}

// TestLegRace checks that of concurrent creations of different conversations sharing a leg
// (two instances seeing a new customer at once) exactly one is created.
func TestLegRace(t *testing.T) {
	ctx := context.Background()
	s := open(t, server(t), "race:")
	const n = 8
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, created[i], errs[i] = s.CreateConversation(ctx, legConv(fmt.Sprint("c", i), "shared"))
		})
	}
	wg.Wait()
	winner := -1
	for i := range n {
		if created[i] {
			require.Equal(t, -1, winner, "two created")
			require.NoError(t, errs[i])
			winner = i
			continue
		}
		require.ErrorIs(t, errs[i], bridge.ErrLegTaken)
		_, err := s.ConversationByLeg(ctx, "directline", fmt.Sprint("c", i))
		require.ErrorIs(t, err, bridge.ErrUnknownConversation, "the loser's own leg is released")
	}
	require.NotEqual(t, -1, winner)
	got, err := s.ConversationByLeg(ctx, "botframework", "shared")
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint("c", winner), got.ID)
}

// TestAbandonedLeg checks that a leg left indexed by a creation that crashed before storing
// its conversation is taken over.
func TestAbandonedLeg(t *testing.T) {
	ctx := context.Background()
	rdb := server(t)
	s := open(t, rdb, "abandoned:")
	require.NoError(t, rdb.Set(ctx, s.legKey("botframework/b"), "crashed", 0).Err())
	_, err := s.ConversationByLeg(ctx, "botframework", "b")
	require.ErrorIs(t, err, bridge.ErrUnknownConversation)
	_, created, err := s.CreateConversation(ctx, legConv("c", "b"))
	require.NoError(t, err)
	require.True(t, created)
	got, err := s.ConversationByLeg(ctx, "botframework", "b")
	require.NoError(t, err)
	require.Equal(t, "c", got.ID)
}

// TestExpiry checks that a conversation's keys expire together, and that the global indexes
// drop what they held of it.
func TestExpiry(t *testing.T) {
	ctx := context.Background()
	rdb := server(t)
	s, err := Open(ctx, Options{Client: rdb, Prefix: "ttl:", TTL: 300 * time.Millisecond})
	require.NoError(t, err)
	_, _, err = s.CreateConversation(ctx, legConv("c", "b"))
	require.NoError(t, err)
	_, _, err = s.Append(ctx, "c", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("x"), To: []string{"botframework/b"}})
	require.NoError(t, err)
	past := time.Now().Add(-time.Minute)
	require.NoError(t, s.SetTimer(ctx, "c", "inactivity", past))
	require.NoError(t, s.PutValue(ctx, "c", "k", []byte("v")))
	require.NoError(t, s.PutValue(ctx, "", "k", []byte("own")))
	p, err := s.Pending(ctx)
	require.NoError(t, err)
	require.Len(t, p, 1)
	due, err := s.DueTimers(ctx, time.Now(), 0)
	require.NoError(t, err)
	require.Len(t, due, 1)

	require.Eventually(t, func() bool {
		n, err := rdb.Exists(ctx, s.convKeys("c")...).Result()
		return err == nil && n == 0
	}, 5*time.Second, 50*time.Millisecond, "every key of the conversation expires")
	_, err = s.Conversation(ctx, "c")
	require.ErrorIs(t, err, bridge.ErrUnknownConversation)
	p, err = s.Pending(ctx)
	require.NoError(t, err)
	require.Empty(t, p)
	due, err = s.DueTimers(ctx, time.Now(), 0)
	require.NoError(t, err)
	require.Empty(t, due)
	vals, err := s.Values(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"": []byte("own")}, vals, "the bridge's own values never expire")
	for _, k := range []string{s.pendingKey(), s.timersKey(), s.vidxKey("k")} {
		n, err := rdb.Exists(ctx, k).Result()
		require.NoError(t, err)
		require.Zero(t, n, "%s emptied", k)
	}
}

// waitFired waits for ch, failing the test after d.
func waitFired(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatal(what)
	}
}

// TestCrossInstanceWatch checks that an append made through one store wakes a watcher of
// another store on the same Redis (another instance) at once, and only once the log passes
// the watched sequence.
func TestCrossInstanceWatch(t *testing.T) {
	rdb := server(t)
	ctx := context.Background()
	// two clients, as two processes would have
	rdb2 := goredis.NewClient(&goredis.Options{Addr: rdb.(*goredis.Client).Options().Addr})
	t.Cleanup(func() { _ = rdb2.Close() })
	a, b := open(t, rdb, "x:"), open(t, rdb2, "x:")
	_, _, err := a.CreateConversation(ctx, legConv("c"))
	require.NoError(t, err)
	_, _, err = a.Append(ctx, "c", bridge.Entry{From: bridge.RoleBot, Activity: msg("0")})
	require.NoError(t, err)

	early := make(chan struct{})
	b.Watch("c", 1, func() { close(early) }) // waits for seq 2
	fired := make(chan struct{})
	start := time.Now()
	b.Watch("c", 0, func() { close(fired) })
	_, _, err = a.Append(ctx, "c", bridge.Entry{From: bridge.RoleBot, Activity: msg("1")})
	require.NoError(t, err)
	waitFired(t, fired, 2*time.Second, "a watcher on b not woken by an append on a")
	require.Less(t, time.Since(start), 500*time.Millisecond, "wake-up delay")
	select {
	case <-early:
		t.Fatal("a watcher waiting for seq 2 woken by seq 1")
	case <-time.After(200 * time.Millisecond):
	}
	_, _, err = a.Append(ctx, "c", bridge.Entry{From: bridge.RoleBot, Activity: msg("2")})
	require.NoError(t, err)
	waitFired(t, early, 2*time.Second, "a watcher on b not woken by the second append on a")

	// many watchers of many conversations share one subscription connection
	n0 := pubsubClients(t, rdb)
	for i := range 20 {
		id := fmt.Sprint("m", i)
		_, _, err := a.CreateConversation(ctx, legConv(id))
		require.NoError(t, err)
		b.Watch(id, -1, func() {})
	}
	require.Equal(t, n0, pubsubClients(t, rdb), "no connection per watched conversation")
}

// pubsubClients counts the server's pub/sub connections.
func pubsubClients(t *testing.T, rdb goredis.UniversalClient) int {
	t.Helper()
	list, err := rdb.ClientList(context.Background()).Result()
	require.NoError(t, err)
	n := 0
	for _, l := range strings.Split(list, "\n") {
		if strings.Contains(l, "sub=1") || strings.Contains(l, "flags=P") {
			n++
		}
	}
	return n
}

// TestWatchSurvivesDisconnect checks that a lost subscription does not lose a wake-up: when it
// is back, every watcher is woken to read the log again.
func TestWatchSurvivesDisconnect(t *testing.T) {
	rdb := server(t)
	ctx := context.Background()
	a, b := open(t, rdb, "d:"), open(t, rdb, "d:")
	_, _, err := a.CreateConversation(ctx, legConv("c"))
	require.NoError(t, err)

	// the subscription drops and comes back (here, as the subscriber sees it): the hint of an
	// append made meanwhile is gone, so every watcher is woken
	fired := make(chan struct{})
	b.Watch("c", -1, func() { close(fired) })
	b.setUp(false)
	b.setUp(true)
	waitFired(t, fired, time.Second, "a watcher not woken when the subscription came back")

	// the server kills the subscription's connection; an append right after still wakes the watcher
	fired = make(chan struct{})
	b.Watch("c", -1, func() { close(fired) })
	require.NoError(t, rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err())
	_, _, err = a.Append(ctx, "c", bridge.Entry{From: bridge.RoleBot, Activity: msg("x")})
	require.NoError(t, err)
	waitFired(t, fired, 5*time.Second, "a watcher not woken after the subscription was killed")
	// and the subscription is live again for the next ones
	fired = make(chan struct{})
	require.Eventually(t, func() bool { return pubsubClients(t, rdb) >= 1 }, 5*time.Second, 20*time.Millisecond)
	b.Watch("c", 0, func() { close(fired) })
	_, _, err = a.Append(ctx, "c", bridge.Entry{From: bridge.RoleBot, Activity: msg("y")})
	require.NoError(t, err)
	waitFired(t, fired, 2*time.Second, "a watcher not woken after the subscription came back")
}

// TestPendingIndexPruned checks that Pending drops caught-up conversations from its index, and
// that doing so while appends run never loses a conversation with work.
func TestPendingIndexPruned(t *testing.T) {
	ctx := context.Background()
	rdb := server(t)
	s := open(t, rdb, "prune:")
	const leg = "botframework/b"
	_, _, err := s.CreateConversation(ctx, legConv("idle"))
	require.NoError(t, err)
	seq, _, err := s.Append(ctx, "idle", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("x"), To: []string{leg}})
	require.NoError(t, err)
	require.NoError(t, s.Ack(ctx, "idle", leg, seq))
	p, err := s.Pending(ctx)
	require.NoError(t, err)
	require.Empty(t, p)
	n, err := rdb.SCard(ctx, s.pendingKey()).Result()
	require.NoError(t, err)
	require.Zero(t, n, "a caught-up conversation leaves the index")
	_, _, err = s.Append(ctx, "idle", bridge.Entry{From: bridge.RoleCustomer, Activity: msg("y"), To: []string{leg}})
	require.NoError(t, err)
	p, err = s.Pending(ctx)
	require.NoError(t, err)
	require.Len(t, p, 1, "and comes back with its next record")

	// appends and acks racing with Pending's pruning
	const convs, rounds = 8, 30
	stop, done := make(chan struct{}), make(chan struct{})
	var scans atomic.Int64
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Pending(ctx); err != nil {
				t.Error(err)
				return
			}
			scans.Add(1)
		}
	}()
	var wg sync.WaitGroup
	for i := range convs {
		id := fmt.Sprint("r", i)
		_, _, err := s.CreateConversation(ctx, legConv(id))
		require.NoError(t, err)
		wg.Go(func() {
			for range rounds {
				seq, _, err := s.Append(ctx, id, bridge.Entry{From: bridge.RoleCustomer, Activity: msg("m"), To: []string{leg}})
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.Ack(ctx, id, leg, seq); err != nil {
					t.Error(err)
					return
				}
			}
			// the last record stays unacknowledged: the conversation has work
			if _, _, err := s.Append(ctx, id, bridge.Entry{From: bridge.RoleCustomer, Activity: msg("last"), To: []string{leg}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-done
	require.Positive(t, scans.Load())
	p, err = s.Pending(ctx)
	require.NoError(t, err)
	got := map[string]bool{}
	for _, l := range p {
		got[l.ConversationID] = true
	}
	for i := range convs {
		require.True(t, got[fmt.Sprint("r", i)], "r%d lost from the pending index", i)
	}
}

// TestStoppedWatchersSwept checks that the watchers readers stopped are dropped, also while
// other conversations keep the subscription busy.
func TestStoppedWatchersSwept(t *testing.T) {
	ctx := context.Background()
	s := open(t, server(t), "sweep:")
	for _, id := range []string{"quiet", "busy"} {
		_, _, err := s.CreateConversation(ctx, legConv(id))
		require.NoError(t, err)
	}
	for i := range 50 {
		stop := s.Watch("quiet", int64(i), func() {})
		require.True(t, stop())
	}
	busy, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // a hint every 100ms
		for busy.Err() == nil {
			_, _, _ = s.Append(busy, "busy", bridge.Entry{From: bridge.RoleBot, Activity: msg("x")})
			time.Sleep(100 * time.Millisecond)
		}
	}()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.watchers["quiet"] == nil
	}, 3*subPing, 50*time.Millisecond, "stopped watchers of a quiet conversation dropped")
}
