package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// storedCursor reads a cursor from the file, not from the store's memory.
func storedCursor(t *testing.T, s *Store, convID, leg string) int64 {
	t.Helper()
	var seq int64 = -1
	err := s.rdb.QueryRowContext(context.Background(), `SELECT seq FROM cursors WHERE conv_id = ? AND leg = ?`, convID, leg).Scan(&seq)
	if err != nil {
		require.ErrorContains(t, err, "no rows")
	}
	return seq
}

// TestAckCommit checks when an acknowledged cursor reaches the file: with the next write's
// commit, or after AckWait on its own, or at Close.
func TestAckCommit(t *testing.T) {
	ctx := context.Background()
	setUp := func(t *testing.T, opts Options) *Store {
		s := open(t, opts)
		create(t, s, conv("a"))
		_, _, err := add(s, "a", bridge.RoleCustomer, msg("x"), "", "bot")
		require.NoError(t, err)
		return s
	}

	t.Run("alone, within AckWait", func(t *testing.T) {
		s := setUp(t, Options{})
		before := s.Stats()
		start := time.Now()
		require.NoError(t, s.Ack(ctx, "a", "bot", 0))
		cur, err := s.Cursor(ctx, "a", "bot")
		require.NoError(t, err)
		require.Equal(t, int64(0), cur, "read back at once")
		require.Empty(t, mustPending(t, s), "not pending once acknowledged")
		require.Eventually(t, func() bool { return storedCursor(t, s, "a", "bot") == 0 }, 5*time.Second, time.Millisecond)
		t.Logf("committed %v after Ack", time.Since(start))
		require.Equal(t, Stats{Writes: 1, Transactions: 1}, sub(s.Stats(), before), "in a commit of its own")
	})

	t.Run("acks share a commit", func(t *testing.T) {
		s := setUp(t, Options{AckWait: 50 * time.Millisecond})
		before := s.Stats()
		for seq := range int64(5) {
			require.NoError(t, s.Ack(ctx, "a", "bot", seq))
		}
		require.Eventually(t, func() bool { return storedCursor(t, s, "a", "bot") == 4 }, 5*time.Second, time.Millisecond)
		require.Equal(t, Stats{Writes: 5, Transactions: 1}, sub(s.Stats(), before))
	})

	t.Run("with the next write", func(t *testing.T) {
		s := setUp(t, Options{AckWait: time.Hour})
		before := s.Stats()
		require.NoError(t, s.Ack(ctx, "a", "bot", 0))
		time.Sleep(20 * time.Millisecond)
		require.Equal(t, int64(-1), storedCursor(t, s, "a", "bot"), "an ack alone waits for AckWait")
		_, _, err := add(s, "a", bridge.RoleBot, msg("y"), "")
		require.NoError(t, err)
		require.Equal(t, int64(0), storedCursor(t, s, "a", "bot"), "committed with the append")
		require.Equal(t, Stats{Writes: 2, Transactions: 1}, sub(s.Stats(), before))
	})

	t.Run("at close", func(t *testing.T) {
		dir := t.TempDir()
		s := setUp(t, Options{Dir: dir, AckWait: time.Hour})
		require.NoError(t, s.Ack(ctx, "a", "bot", 0))
		require.NoError(t, s.Close())
		s = open(t, Options{Dir: dir})
		require.Equal(t, int64(0), storedCursor(t, s, "a", "bot"))
	})

	t.Run("at once, with a negative AckWait", func(t *testing.T) {
		s := setUp(t, Options{AckWait: -1})
		require.Zero(t, s.opts.AckWait)
		require.NoError(t, s.Ack(ctx, "a", "bot", 0))
		require.Eventually(t, func() bool { return storedCursor(t, s, "a", "bot") == 0 }, 5*time.Second, time.Millisecond)
	})
}

// sub returns the counts of a since b.
func sub(a, b Stats) Stats {
	return Stats{Writes: a.Writes - b.Writes, Transactions: a.Transactions - b.Transactions,
		Failed: a.Failed - b.Failed, Swept: a.Swept - b.Swept}
}
