package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/storetest"
)

// open opens a store in dir and closes it when the test ends.
func open(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := Open(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func conv(id string) *bridge.Conversation {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &bridge.Conversation{
		ID: id, State: bridge.StateBot, Created: now, Updated: now,
		Customer: bridge.Leg{Channel: "directline", ConversationID: id},
		Bot:      bridge.Leg{Channel: "botframework", ConversationID: id + "-bot"},
	}
}

func msg(text string) *activity.Activity { return &activity.Activity{Type: "message", Text: text} }

// clock is a settable clock for the TTL tests.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bridge.Store { return open(t, Options{}) },
		storetest.WithReopen(func(t *testing.T, s bridge.Store) bridge.Store {
			dir := s.(*Store).opts.Dir
			require.NoError(t, s.Close())
			return open(t, Options{Dir: dir})
		}))
}

// create stores a new conversation.
func create(t testing.TB, s *Store, c *bridge.Conversation) {
	t.Helper()
	_, created, err := s.CreateConversation(context.Background(), c)
	require.NoError(t, err)
	require.True(t, created)
}

// add appends a message from role to the log, addressed to the legs in to.
func add(s *Store, convID string, role bridge.Role, a *activity.Activity, key string, to ...string) (int64, bool, error) {
	return s.Append(context.Background(), convID, bridge.Entry{From: role, Activity: a, Key: key, To: to})
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("data directory, pragmas and schema", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "bridge")
		s := open(t, Options{Dir: dir})
		fi, err := os.Stat(dir)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
		require.FileExists(t, filepath.Join(dir, FileName))
		var mode string
		var sync, version int
		require.NoError(t, s.wdb.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode))
		require.NoError(t, s.wdb.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync))
		require.NoError(t, s.wdb.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version))
		require.Equal(t, "wal", mode)
		require.Equal(t, 2, sync, "synchronous=FULL")
		require.Equal(t, schemaVersion, version)
		// the read pool cannot write
		_, err = s.rdb.ExecContext(ctx, `DELETE FROM log`)
		require.Error(t, err)
	})
	t.Run("one store per directory", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(ctx, Options{Dir: dir})
		require.NoError(t, err)
		_, err = Open(ctx, Options{Dir: dir})
		require.ErrorIs(t, err, ErrLocked)
		require.NoError(t, s.Close())
		s, err = Open(ctx, Options{Dir: dir})
		require.NoError(t, err)
		require.NoError(t, s.Close())
	})
	t.Run("no directory", func(t *testing.T) {
		_, err := Open(ctx, Options{})
		require.ErrorContains(t, err, "no data directory")
	})
	t.Run("newer schema is refused", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(ctx, Options{Dir: dir})
		require.NoError(t, err)
		_, err = s.wdb.ExecContext(ctx, `PRAGMA user_version = 99`)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		_, err = Open(ctx, Options{Dir: dir})
		require.ErrorContains(t, err, "schema version 99")
	})
	t.Run("calls after close", func(t *testing.T) {
		s, err := Open(ctx, Options{Dir: t.TempDir()})
		require.NoError(t, err)
		create(t, s, conv("c"))
		ch := bridge.Notify(s, "c", 5)
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "close twice")
		<-ch // waiters are woken
		_, _, err = add(s, "c", bridge.RoleBot, msg("x"), "")
		require.ErrorIs(t, err, ErrClosed)
		_, err = s.Since(ctx, "c", -1, 0)
		require.ErrorIs(t, err, ErrClosed)
		<-bridge.Notify(s, "c", 100)
	})
}

func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	t.Run("a held batch commits once", func(t *testing.T) {
		// The writer waits (up to an hour) for the batch to fill: n appends, one transaction.
		const n = 16
		s := open(t, Options{BatchMax: n, BatchWait: time.Hour})
		concurrently(n, func(i int) {
			create(t, s, conv(fmt.Sprint("g", i)))
		})
		require.Equal(t, Stats{Writes: n, Transactions: 1}, s.Stats())
		concurrently(n, func(i int) {
			_, _, err := add(s, fmt.Sprint("g", i), bridge.RoleBot, msg("x"), "")
			require.NoError(t, err)
		})
		require.Equal(t, Stats{Writes: 2 * n, Transactions: 2}, s.Stats())
	})
	t.Run("concurrent appenders share transactions", func(t *testing.T) {
		s := open(t, Options{})
		const writers, each = 32, 20
		for i := range 4 {
			create(t, s, conv(fmt.Sprint("c", i)))
		}
		before := s.Stats()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					_, _, err := add(s, fmt.Sprint("c", w%4), bridge.RoleCustomer, msg("x"), "")
					require.NoError(t, err)
				}
			}()
		}
		wg.Wait()
		after := s.Stats()
		writes, txs := after.Writes-before.Writes, after.Transactions-before.Transactions
		t.Logf("%d appends in %d transactions", writes, txs)
		require.Equal(t, uint64(writers*each), writes)
		require.Less(t, txs, writes/2, "group commit should batch concurrent appends")
		for i := range 4 {
			recs, err := s.Since(ctx, fmt.Sprint("c", i), -1, 0)
			require.NoError(t, err)
			require.Len(t, recs, writers*each/4)
			for j, r := range recs {
				require.Equal(t, int64(j), r.Seq)
			}
		}
	})
	t.Run("a bad write fails alone", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(ctx, Options{Dir: dir})
		require.NoError(t, err)
		create(t, s, conv("ok"))
		require.NoError(t, s.Close())
		// A trigger makes the insert of one append fail, as a full disk or a broken row would.
		db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), nil))
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, `CREATE TRIGGER poison BEFORE INSERT ON log WHEN NEW.from_role = 'poison'
			BEGIN SELECT RAISE(ABORT, 'poisoned'); END`)
		require.NoError(t, err)
		require.NoError(t, db.Close())

		// Three writes in one batch: a good one, one for an unknown conversation and one whose
		// statement fails. Only the good one is written.
		s = open(t, Options{Dir: dir, BatchMax: 3, BatchWait: time.Hour, Log: zerolog.New(zerolog.NewTestWriter(t))})
		poisoned := msg("p")
		errs := make([]error, 3)
		calls := []func() error{
			func() error { _, _, err := add(s, "ok", bridge.RoleBot, msg("good"), ""); return err },
			func() error { _, _, err := add(s, "missing", bridge.RoleBot, msg("x"), ""); return err },
			func() error { _, _, err := add(s, "ok", "poison", poisoned, ""); return err },
		}
		concurrently(3, func(i int) { errs[i] = calls[i]() })
		require.NoError(t, errs[0])
		require.ErrorIs(t, errs[1], bridge.ErrUnknownConversation)
		require.ErrorContains(t, errs[2], "poisoned")
		require.Empty(t, poisoned.ID, "a failed append leaves the id alone")
		recs, err := s.Since(ctx, "ok", -1, 0)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, int64(0), recs[0].Seq)
		require.Equal(t, "good", recs[0].Activity.Text)
		require.Equal(t, Stats{Writes: 2, Transactions: 1}, s.Stats())

		// An activity that does not encode never reaches the writer.
		unencodable := msg("x")
		unencodable.ChannelData = []byte(`{not json`)
		_, _, err = add(s, "ok", bridge.RoleBot, unencodable, "")
		require.ErrorContains(t, err, "encode activity")
		require.Empty(t, unencodable.ID)
	})
	t.Run("a cancelled append writes nothing", func(t *testing.T) {
		s := open(t, Options{})
		create(t, s, conv("x"))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, _, err := s.Append(cctx, "x", bridge.Entry{From: bridge.RoleBot, Activity: msg("x")})
		require.ErrorIs(t, err, context.Canceled)
		last, err := s.Last(ctx, "x")
		require.NoError(t, err)
		require.Equal(t, int64(-1), last)
	})
}

// concurrently runs f(0) … f(n-1) in n goroutines and waits for them.
func concurrently(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}

func TestAckUnknownConversation(t *testing.T) {
	s := open(t, Options{})
	require.ErrorIs(t, s.Ack(context.Background(), "ghost", "bot", 1), bridge.ErrUnknownConversation)
}

// own gives the conversation one of every kind of row a conversation owns: a record with an
// idempotency key addressed to its bot (acknowledged), one addressed to an agent (pending), a
// timer, a value and a file.
func own(t *testing.T, s *Store, id string, due time.Time) {
	ctx := context.Background()
	create(t, s, conv(id))
	_, _, err := add(s, id, bridge.RoleCustomer, msg("x"), "k", "bot")
	require.NoError(t, err)
	require.NoError(t, s.Ack(ctx, id, "bot", 0))
	_, _, err = add(s, id, bridge.RoleBot, msg("y"), "", "agent")
	require.NoError(t, err)
	require.NoError(t, s.SetTimer(ctx, id, "inactivity", due))
	require.NoError(t, s.PutValue(ctx, id, "session", []byte(id)))
	require.NoError(t, s.PutBlob(ctx, id, "f", bridge.Blob{ContentType: "text/plain", Data: []byte(id)}))
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, Options{TTL: time.Hour, SweepEvery: time.Hour, Clock: clk.Now})
	for _, id := range []string{"old", "live", "big"} {
		own(t, s, id, clk.Now())
	}
	require.NoError(t, s.PutValue(ctx, "", "routing", []byte("global")))
	concurrently(50, func(int) { // more log than one sweep step deletes
		for range 50 {
			_, _, err := add(s, "big", bridge.RoleBot, msg("y"), "")
			require.NoError(t, err)
		}
	})
	wake := bridge.Notify(s, "old", 1)
	clk.Advance(59 * time.Minute)
	_, _, err := add(s, "live", bridge.RoleBot, msg("z"), "") // restarts live's TTL
	require.NoError(t, err)
	clk.Advance(2 * time.Minute)

	before := s.Stats()
	n, err := s.sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.GreaterOrEqual(t, s.Stats().Transactions-before.Transactions, uint64(3), "the sweep works in bounded steps")
	select {
	case <-wake:
	default:
		t.Fatal("a waiter on a swept conversation is woken")
	}
	for _, id := range []string{"old", "big"} {
		requireGone(t, s, id)
	}
	var rows int
	require.NoError(t, s.rdb.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM log WHERE conv_id != 'live') + (SELECT COUNT(*) FROM purge) +
		(SELECT COUNT(*) FROM legs WHERE conv_id != 'live') + (SELECT COUNT(*) FROM cursors WHERE conv_id != 'live') +
		(SELECT COUNT(*) FROM addressed WHERE conv_id != 'live') + (SELECT COUNT(*) FROM timers WHERE conv_id != 'live') +
		(SELECT COUNT(*) FROM vals WHERE conv_id NOT IN ('live', '')) + (SELECT COUNT(*) FROM blobs WHERE conv_id != 'live')`).Scan(&rows))
	require.Zero(t, rows, "nothing of the swept conversations is left")

	// What the live conversation owns, and the bridge's own values, are kept.
	recs, err := s.Since(ctx, "live", -1, 0)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, []bridge.PendingLeg{{ConversationID: "live", Leg: "agent", Cursor: -1, Last: 1}}, mustPending(t, s))
	timers, err := s.DueTimers(ctx, clk.Now(), 0)
	require.NoError(t, err)
	require.Len(t, timers, 1)
	require.Equal(t, "live", timers[0].ConversationID)
	sessions, err := s.Values(ctx, "session")
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"live": []byte("live")}, sessions)
	v, err := s.Value(ctx, "", "routing")
	require.NoError(t, err)
	require.Equal(t, "global", string(v), "the bridge's own values are never swept")
	_, err = s.Blob(ctx, "live", "f")
	require.NoError(t, err)

	// An id used again starts afresh, idempotency keys included.
	create(t, s, conv("old"))
	seq, dup, err := add(s, "old", bridge.RoleCustomer, msg("x"), "k")
	require.NoError(t, err)
	require.False(t, dup)
	require.Equal(t, int64(0), seq)
	require.Equal(t, uint64(2), s.Stats().Swept)
}

// requireGone checks that nothing of a swept conversation can be read.
func requireGone(t *testing.T, s *Store, id string) {
	t.Helper()
	ctx := context.Background()
	_, err := s.Conversation(ctx, id)
	require.ErrorIs(t, err, bridge.ErrUnknownConversation)
	_, err = s.ConversationByLeg(ctx, "botframework", id+"-bot")
	require.ErrorIs(t, err, bridge.ErrUnknownConversation)
	_, err = s.Since(ctx, id, -1, 0)
	require.ErrorIs(t, err, bridge.ErrUnknownConversation)
	_, err = s.Last(ctx, id)
	require.ErrorIs(t, err, bridge.ErrUnknownConversation)
	cur, err := s.Cursor(ctx, id, "bot")
	require.NoError(t, err)
	require.Equal(t, int64(-1), cur)
	_, err = s.Value(ctx, id, "session")
	require.ErrorIs(t, err, bridge.ErrNotFound)
	_, err = s.Blob(ctx, id, "f")
	require.ErrorIs(t, err, bridge.ErrNotFound)
}

func mustPending(t *testing.T, s *Store) []bridge.PendingLeg {
	t.Helper()
	p, err := s.Pending(context.Background())
	require.NoError(t, err)
	return p
}

func TestSweepInBackground(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, Options{TTL: time.Minute, SweepEvery: 10 * time.Millisecond, Clock: clk.Now})
	create(t, s, conv("a"))
	_, _, err := add(s, "a", bridge.RoleCustomer, msg("x"), "")
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond) // a few sweeps that must keep it
	_, err = s.Conversation(ctx, "a")
	require.NoError(t, err)
	clk.Advance(2 * time.Minute)
	require.Eventually(t, func() bool {
		_, err := s.Conversation(ctx, "a")
		return err != nil
	}, 10*time.Second, 10*time.Millisecond)
}

func TestNeverSweep(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, Options{TTL: -1, Clock: clk.Now})
	create(t, s, conv("a"))
	clk.Advance(1000 * time.Hour)
	select {
	case <-s.sweeperDone:
	default:
		t.Fatal("no sweeper runs with a negative TTL")
	}
	_, err := s.Conversation(ctx, "a")
	require.NoError(t, err)
}

func TestCorruptRows(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first, err := Open(ctx, Options{Dir: dir})
	require.NoError(t, err)
	create(t, first, conv("c"))
	_, _, err = add(first, "c", bridge.RoleBot, msg("x"), "")
	require.NoError(t, err)
	require.NoError(t, first.Close())
	// Damage the rows while no store has them in memory, as a bad disk or a careless hand would.
	s := open(t, Options{Dir: dir, Log: zerolog.New(zerolog.NewTestWriter(t))})
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), nil))
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `UPDATE log SET activity = x'00ff'`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `UPDATE conversations SET body = '{"id":'`)
	require.NoError(t, err)
	_, err = s.Since(ctx, "c", -1, 0)
	require.ErrorContains(t, err, "corrupt record c|0000000")
	_, err = s.Conversation(ctx, "c")
	require.ErrorContains(t, err, "corrupt conversation")
	_, err = s.ConversationByLeg(ctx, "directline", "c")
	require.ErrorContains(t, err, "corrupt conversation")
	// writes still work
	seq, _, err := add(s, "c", bridge.RoleBot, msg("y"), "")
	require.NoError(t, err)
	require.Equal(t, int64(1), seq)
}
