package redis

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// The Hub on several stores sharing one Redis, as several bridge processes: each has a client
// of its own, so that one "dies" (its client closes) without the others noticing.

// log is what the bot channels of all the instances were sent, in the order they were sent.
type sentLog struct {
	mu  sync.Mutex
	got []string // "<instance>:<text>" of messages
}

func (l *sentLog) add(inst, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, inst+":"+text)
}

func (l *sentLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// botChan is a bot channel of one instance: it records the messages it delivers in a shared
// log, or blocks (until its context ends) while block is set.
type botChan struct {
	inst    string
	log     *sentLog
	mu      sync.Mutex
	block   bool
	entered chan struct{} // closed when a blocked send starts
	once    sync.Once
	// release, when set, ends a blocked send: it then delivers (a stalled process that wakes up)
	release chan struct{}
}

func (b *botChan) Name() string { return "botframework" }

func (b *botChan) Send(ctx context.Context, _ bridge.Leg, a *activity.Activity) (string, error) {
	b.mu.Lock()
	block := b.block
	b.mu.Unlock()
	if block {
		b.once.Do(func() { close(b.entered) })
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-b.release:
		}
	}
	if a.Type == activity.TypeMessage {
		b.log.add(b.inst, a.Text)
	}
	return a.ID, nil
}

// customerChan records what the customer's leg is sent (here not a log reader, so that the
// outbox delivers to it).
type customerChan struct {
	mu      sync.Mutex
	got     []string
	blocked chan struct{} // when set, sends block until their context ends, and this is closed
}

func (c *customerChan) Name() string { return "directline" }

func (c *customerChan) Send(ctx context.Context, _ bridge.Leg, a *activity.Activity) (string, error) {
	c.mu.Lock()
	if b := c.blocked; b != nil {
		c.blocked = nil
		close(b)
		c.mu.Unlock()
		<-ctx.Done()
		return "", ctx.Err()
	}
	defer c.mu.Unlock()
	c.got = append(c.got, a.Type+":"+a.Text)
	return a.ID, nil
}

func (c *customerChan) sent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// instance is one simulated bridge process.
type instance struct {
	rdb      *goredis.Client
	store    *Store
	hub      *bridge.Hub
	bot      *botChan
	customer *customerChan
	stop     context.CancelFunc
	done     chan struct{}
}

var scaleCfg = bridge.HubConfig{
	DeliveryTimeout: 10 * time.Second,
	LeaseTTL:        600 * time.Millisecond,
	PendingScan:     100 * time.Millisecond,
	InactivityTick:  50 * time.Millisecond,
}

// newInstance starts a Hub (running) on a store of its own client of the Redis at addr.
func newInstance(t *testing.T, addr, name string, log *sentLog, cfg bridge.HubConfig) *instance {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	s, err := Open(context.Background(), Options{Client: rdb, Prefix: "scale:"})
	require.NoError(t, err)
	in := &instance{rdb: rdb, store: s, bot: &botChan{inst: name, log: log, entered: make(chan struct{})}, customer: &customerChan{}}
	in.hub = bridge.NewHub(s, cfg, zerolog.Nop())
	in.hub.Register(in.bot)
	in.hub.Register(in.customer)
	ctx, cancel := context.WithCancel(context.Background())
	in.stop, in.done = cancel, make(chan struct{})
	go func() { defer close(in.done); _ = in.hub.Run(ctx) }()
	t.Cleanup(in.kill)
	return in
}

// kill ends the instance as a crash would, as far as Redis sees it: its client closes first,
// so it neither acknowledges nor releases anything; then its goroutines stop.
func (in *instance) kill() {
	_ = in.rdb.Close()
	in.stop()
	<-in.done
	in.hub.Close()
	_ = in.store.Close()
}

func botLeg(id string) string { return "botframework/" + id }

// TestDeadInstanceDeliveriesTakenOver: instance A's pump for the bot leg is stuck in a
// delivery with records pending behind it; B sees them pending but leaves them to A's lease.
// A dies: once its lease runs out B takes the leg over and delivers each pending record once,
// in order.
func TestDeadInstanceDeliveriesTakenOver(t *testing.T) {
	addr := server(t).(*goredis.Client).Options().Addr
	ctx := context.Background()
	log := &sentLog{}
	a := newInstance(t, addr, "a", log, scaleCfg)
	b := newInstance(t, addr, "b", log, scaleCfg)
	a.bot.block = true

	_, created, err := a.hub.Start(ctx, "c", bridge.Leg{Channel: "directline", ConversationID: "c"})
	require.NoError(t, err)
	require.True(t, created)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = a.hub.Receive(rctx, bridge.Leg{Channel: "directline", ConversationID: "c"}, say("m0"), "")
	}()
	select {
	case <-a.bot.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("A's pump never delivered")
	}
	for i := 1; i < 3; i++ { // appended by other instances meanwhile
		_, _, err := b.store.Append(ctx, "c", bridge.Entry{From: bridge.RoleCustomer, Activity: say(fmt.Sprint("m", i)), To: []string{botLeg("c")}})
		require.NoError(t, err)
	}
	time.Sleep(4 * scaleCfg.LeaseTTL) // A renews its lease: B, scanning, delivers nothing
	require.Empty(t, log.all(), "B delivered a leg whose lease A holds")

	died := time.Now()
	a.kill()
	require.Eventually(t, func() bool { return len(log.all()) >= 3 }, 10*time.Second, 10*time.Millisecond, "B never took over")
	took := time.Since(died)
	time.Sleep(5 * scaleCfg.PendingScan) // anything more would be a duplicate
	require.Equal(t, []string{"b:m0", "b:m1", "b:m2"}, log.all())
	require.Less(t, took, scaleCfg.LeaseTTL+5*scaleCfg.PendingScan+time.Second, "takeover time")
	t.Logf("taken over %s after A died (lease %s, scan %s)", took, scaleCfg.LeaseTTL, scaleCfg.PendingScan)
	cur, err := b.store.Cursor(ctx, "c", botLeg("c"))
	require.NoError(t, err)
	require.Equal(t, int64(2), cur)
	p, err := b.store.Pending(ctx)
	require.NoError(t, err)
	require.Empty(t, p)
}

// TestInstancesShareALegExactlyOnce: customers' activities of one conversation arrive on three
// instances at once; each instance's pump delivers the bot leg only under its lease, so the bot
// gets every activity once, in the log's order, whichever instance delivered it.
func TestInstancesShareALegExactlyOnce(t *testing.T) {
	addr := server(t).(*goredis.Client).Options().Addr
	ctx := context.Background()
	log := &sentLog{}
	ins := []*instance{newInstance(t, addr, "a", log, scaleCfg), newInstance(t, addr, "b", log, scaleCfg), newInstance(t, addr, "c", log, scaleCfg)}
	customer := bridge.Leg{Channel: "directline", ConversationID: "conv"}
	_, _, err := ins[0].hub.Start(ctx, "conv", customer)
	require.NoError(t, err)
	const per = 15
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() {
			for j := range per {
				_, err := in.hub.Receive(ctx, customer, say(fmt.Sprintf("%d-%d", i, j)), "")
				if err != nil {
					t.Errorf("receive on %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return len(log.all()) >= 3*per }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(5 * scaleCfg.PendingScan)
	recs, err := ins[0].store.Since(ctx, "conv", -1, 0)
	require.NoError(t, err)
	var want, got []string
	for _, r := range recs {
		if r.Activity.Type == activity.TypeMessage && r.From == bridge.RoleCustomer {
			want = append(want, r.Activity.Text)
		}
	}
	insts := map[string]bool{}
	for _, g := range log.all() {
		inst, text, _ := cutColon(g)
		insts[inst] = true
		got = append(got, text)
	}
	require.Equal(t, want, got, "every activity once, in the log's order")
	t.Logf("delivered by %d instances", len(insts))
}

func cutColon(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// TestTimersFireOnceAcrossInstances: three instances run the same due inactivity timers; each
// reminder and the close happen once.
func TestTimersFireOnceAcrossInstances(t *testing.T) {
	addr := server(t).(*goredis.Client).Options().Addr
	ctx := context.Background()
	cfg := scaleCfg
	cfg.Inactivity = bridge.Inactivity{RemindAfter: 300 * time.Millisecond, CloseAfter: 900 * time.Millisecond}
	log := &sentLog{}
	ins := []*instance{newInstance(t, addr, "a", log, cfg), newInstance(t, addr, "b", log, cfg), newInstance(t, addr, "c", log, cfg)}
	const n = 4
	for i := range n {
		_, _, err := ins[i%3].hub.Start(ctx, fmt.Sprint("t", i), bridge.Leg{Channel: "directline", ConversationID: fmt.Sprint("t", i)})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		for i := range n {
			c, err := ins[0].store.Conversation(ctx, fmt.Sprint("t", i))
			if err != nil || c.State != bridge.StateEnded {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "every conversation closed for inactivity")
	time.Sleep(5 * cfg.InactivityTick)
	for i := range n {
		recs, err := ins[0].store.Since(ctx, fmt.Sprint("t", i), -1, 0)
		require.NoError(t, err)
		var texts []string
		for _, r := range recs {
			texts = append(texts, r.Activity.Type+":"+r.Activity.Text)
		}
		require.Equal(t, []string{
			"message:" + bridge.DefaultReminder, "message:" + bridge.DefaultCloseText, "endOfConversation:",
		}, texts, "conversation t%d", i)
	}
	var got []string
	for _, in := range ins {
		got = append(got, in.customer.sent()...)
	}
	require.Len(t, got, 3*n, "each reminder, close and end delivered once: %v", got)
}

func say(text string) *activity.Activity {
	return &activity.Activity{Type: "message", Text: text, From: &activity.ChannelAccount{ID: "u"}}
}

// stalled is a store whose Renew says yes without asking Redis: a process that stalled (a long
// pause, a partition) and believes it still holds its leases while they run out.
type stalled struct{ *Store }

func (stalled) Renew(context.Context, string, string, int64, time.Duration) (bool, error) {
	return true, nil
}

// TestStaleOwnerIsFenced: instance A stalls inside a delivery past its lease; B takes the leg
// over and delivers. When A wakes up, its delivery completes (a duplicate under the same id,
// which at-least-once allows) but its acknowledgement is fenced: the cursor stays B's and A
// delivers nothing more.
func TestStaleOwnerIsFenced(t *testing.T) {
	addr := server(t).(*goredis.Client).Options().Addr
	ctx := context.Background()
	log := &sentLog{}
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	sa, err := Open(ctx, Options{Client: rdb, Prefix: "scale:"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sa.Close() })
	abot := &botChan{inst: "a", log: log, block: true, entered: make(chan struct{}), release: make(chan struct{})}
	a := bridge.NewHub(stalled{sa}, scaleCfg, zerolog.Nop())
	a.Register(abot)
	a.Register(&customerChan{})
	t.Cleanup(a.Close)
	newInstance(t, addr, "b", log, scaleCfg) // scanning, it takes the leg over when A's lease runs out

	customer := bridge.Leg{Channel: "directline", ConversationID: "c"}
	_, _, err = a.Start(ctx, "c", customer)
	require.NoError(t, err)
	for i := range 3 {
		_, _, err := sa.Append(ctx, "c", bridge.Entry{From: bridge.RoleCustomer, Activity: say(fmt.Sprint("m", i)), To: []string{botLeg("c")}})
		require.NoError(t, err)
	}
	go func() { _ = a.Run(ctx) }() // resumes the pending leg: A's pump takes the lease and stalls
	select {
	case <-abot.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("A's pump never delivered")
	}
	require.Eventually(t, func() bool { return len(log.all()) >= 3 }, 10*time.Second, 10*time.Millisecond, "B never took over")
	close(abot.release) // A wakes up
	time.Sleep(5 * scaleCfg.PendingScan)
	require.Equal(t, []string{"b:m0", "b:m1", "b:m2", "a:m0"}, log.all(), "A delivered its stalled record, and nothing more")
	cur, err := sa.Cursor(ctx, "c", botLeg("c"))
	require.NoError(t, err)
	require.Equal(t, int64(2), cur)
}

// TestRedisPausedMidRun: Redis stops answering for two seconds (CLIENT PAUSE: DEBUG SLEEP is
// off on a default server) while customers'
// activities arrive on two instances: every activity acknowledged into the log reaches the bot
// once, in the log's order; calls made meanwhile are slower, not wrong.
func TestRedisPausedMidRun(t *testing.T) {
	rdb := server(t)
	addr := rdb.(*goredis.Client).Options().Addr
	ctx := context.Background()
	cfg := scaleCfg
	cfg.LeaseTTL = 5 * time.Second // longer than the pause: leases survive it
	log := &sentLog{}
	ins := []*instance{newInstance(t, addr, "a", log, cfg), newInstance(t, addr, "b", log, cfg)}
	customer := bridge.Leg{Channel: "directline", ConversationID: "p"}
	_, _, err := ins[0].hub.Start(ctx, "p", customer)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for i, in := range ins {
		wg.Go(func() {
			for j := range 20 {
				text := fmt.Sprintf("%d-%d", i, j)
				if _, err := in.hub.Receive(ctx, customer, say(text), ""); err != nil {
					mu.Lock()
					failed = append(failed, text+": "+err.Error())
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	paused := time.Now()
	require.NoError(t, rdb.Do(ctx, "CLIENT", "PAUSE", "2000", "ALL").Err())
	wg.Wait()
	require.Greater(t, time.Since(paused), 1500*time.Millisecond, "the customers' activities waited for Redis")
	recs, err := ins[0].store.Since(ctx, "p", -1, 0)
	require.NoError(t, err)
	var want []string
	for _, r := range recs {
		if r.From == bridge.RoleCustomer && r.Activity.Type == activity.TypeMessage {
			want = append(want, r.Activity.Text)
		}
	}
	require.Len(t, want, 40, "every activity in the log (failures: %v)", failed)
	require.Eventually(t, func() bool { return len(log.all()) >= len(want) }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(5 * cfg.PendingScan)
	var got []string
	for _, g := range log.all() {
		_, text, _ := cutColon(g)
		got = append(got, text)
	}
	require.Equal(t, want, got, "each once, in the log's order")
	t.Logf("Receive failures during the pause: %d %v", len(failed), failed)
}

// redisProc is a redis-server of the test's own that keeps its data in an append-only file, so
// that it can be restarted with it.
type redisProc struct {
	addr, dir string
	cmd       *exec.Cmd
}

func (p *redisProc) start(t *testing.T) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testutil.Require(t, "redis-server")
	}
	_, port, err := net.SplitHostPort(p.addr)
	require.NoError(t, err)
	p.cmd = exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
		"--appendfsync", "always", "--dir", p.dir)
	require.NoError(t, p.cmd.Start())
	cmd := p.cmd
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", p.addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
}

func (p *redisProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// TestRedisRestartedMidRun: Redis is restarted (its data kept) while customers talk through two
// instances and a stream on one watches the log. Activities posted while it is down fail (the
// client posts them again); everything in the log reaches the bot once, in order; the watcher
// set before the restart is woken by an append made after it on the other instance.
func TestRedisRestartedMidRun(t *testing.T) {
	ctx := context.Background()
	rp := &redisProc{addr: testutil.FreeAddr(t), dir: t.TempDir()}
	rp.start(t)
	log := &sentLog{}
	ins := []*instance{newInstance(t, rp.addr, "a", log, scaleCfg), newInstance(t, rp.addr, "b", log, scaleCfg)}
	customer := bridge.Leg{Channel: "directline", ConversationID: "r"}
	_, _, err := ins[0].hub.Start(ctx, "r", customer)
	require.NoError(t, err)
	post := func(i int) { // as a client: again until the bridge takes it
		in := ins[i%2]
		require.Eventually(t, func() bool {
			_, err := in.hub.Receive(ctx, customer, say(fmt.Sprint("m", i)), fmt.Sprint("k", i))
			return err == nil
		}, 20*time.Second, 50*time.Millisecond, "m%d", i)
	}
	for i := range 5 {
		post(i)
	}
	last, err := ins[1].store.Last(ctx, "r")
	require.NoError(t, err)
	woken := make(chan struct{})
	ins[1].store.Watch("r", last, func() { close(woken) })

	rp.stop()
	_, err = ins[0].hub.Receive(ctx, customer, say("m5"), "k5")
	require.Error(t, err, "a POST while Redis is down fails; it is not taken")
	rp.start(t)
	for i := 5; i < 10; i++ {
		post(i)
	}
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("a watcher set before the restart was not woken")
	}
	require.Eventually(t, func() bool { return len(log.all()) >= 10 }, 20*time.Second, 20*time.Millisecond)
	time.Sleep(5 * scaleCfg.PendingScan)
	var got []string
	for _, g := range log.all() {
		_, text, _ := cutColon(g)
		got = append(got, text)
	}
	require.Equal(t, []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}, got, "each once, in order")
}

// TestTimerOfADeadInstanceFires: instance A claims a conversation's inactivity timer and dies
// while delivering the reminder it appended; once A's timer lease runs out, B claims the timer,
// which is still due: the customer gets the reminder once (B delivers A's record; B sees it in
// the log and sends no second one), then the close.
func TestTimerOfADeadInstanceFires(t *testing.T) {
	addr := server(t).(*goredis.Client).Options().Addr
	ctx := context.Background()
	cfg := scaleCfg
	cfg.Inactivity = bridge.Inactivity{RemindAfter: 200 * time.Millisecond, CloseAfter: 2 * time.Second}
	log := &sentLog{}
	a := newInstance(t, addr, "a", log, cfg)
	blocked := make(chan struct{})
	a.customer.mu.Lock()
	a.customer.blocked = blocked
	a.customer.mu.Unlock()
	_, _, err := a.hub.Start(ctx, "t", bridge.Leg{Channel: "directline", ConversationID: "t"})
	require.NoError(t, err)
	select {
	case <-blocked: // A handles the timer: the reminder is in the log, its delivery hangs
	case <-time.After(5 * time.Second):
		t.Fatal("A never reminded")
	}
	b := newInstance(t, addr, "b", log, cfg)
	time.Sleep(2 * cfg.LeaseTTL)
	require.Empty(t, b.customer.sent(), "B waits while A holds the timer")
	a.kill()
	want := []string{"message:" + bridge.DefaultReminder, "message:" + bridge.DefaultCloseText, "endOfConversation:"}
	require.Eventually(t, func() bool { return len(b.customer.sent()) >= len(want) }, 10*time.Second, 20*time.Millisecond,
		"B took the timer over; it got %v", b.customer.sent())
	time.Sleep(5 * cfg.InactivityTick)
	require.Equal(t, want, b.customer.sent())
}
