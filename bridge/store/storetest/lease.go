package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// RunLeaser checks the contract of bridge.Leaser, for stores shared by several processes.
// newPair returns two stores on the same (fresh, empty) data, as two bridge processes would
// open them; both must implement bridge.Leaser.
func RunLeaser(t *testing.T, newPair func(t *testing.T) (a, b bridge.Store)) {
	ctx := context.Background()
	pair := func(t *testing.T) (bridge.Store, bridge.Leaser, bridge.Leaser) {
		a, b := newPair(t)
		la, ok := a.(bridge.Leaser)
		require.True(t, ok, "the first store is a Leaser")
		lb, ok := b.(bridge.Leaser)
		require.True(t, ok, "the second store is a Leaser")
		return a, la, lb
	}
	const lease = "out:botframework/b"
	const long = time.Minute

	t.Run("one holder at a time, tokens grow", func(t *testing.T) {
		_, a, b := pair(t)
		t1, ok, err := a.Acquire(ctx, "c", lease, long)
		require.NoError(t, err)
		require.True(t, ok)
		require.Positive(t, t1)
		_, ok, err = b.Acquire(ctx, "c", lease, long)
		require.NoError(t, err)
		require.False(t, ok, "held by a")
		_, ok, err = a.Acquire(ctx, "c", lease, long)
		require.NoError(t, err)
		require.False(t, ok, "held, even by the same process: a lease is per run, not per process")
		other, ok, err := b.Acquire(ctx, "c", "out:desk/x", long)
		require.NoError(t, err)
		require.True(t, ok, "another lease of the conversation is free")
		require.Positive(t, other)
		_, ok, err = b.Acquire(ctx, "d", lease, long)
		require.NoError(t, err)
		require.True(t, ok, "the same lease of another conversation is free")

		ok, err = a.Renew(ctx, "c", lease, t1, long)
		require.NoError(t, err)
		require.True(t, ok, "the holder renews")
		ok, err = b.Renew(ctx, "c", lease, t1+1, long)
		require.NoError(t, err)
		require.False(t, ok, "a token that does not hold it does not renew")
		require.NoError(t, b.Release(ctx, "c", lease, t1+1)) // not the holder: nothing
		_, ok, err = b.Acquire(ctx, "c", lease, long)
		require.NoError(t, err)
		require.False(t, ok, "a release by a token that does not hold it frees nothing")

		require.NoError(t, a.Release(ctx, "c", lease, t1))
		t2, ok, err := b.Acquire(ctx, "c", lease, long)
		require.NoError(t, err)
		require.True(t, ok, "free once released")
		require.Greater(t, t2, t1)
		ok, err = a.Renew(ctx, "c", lease, t1, long)
		require.NoError(t, err)
		require.False(t, ok, "the old holder's token renews nothing")
	})

	t.Run("a lease not renewed runs out", func(t *testing.T) {
		_, a, b := pair(t)
		t1, ok, err := a.Acquire(ctx, "c", lease, 150*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		_, ok, err = b.Acquire(ctx, "c", lease, long)
		require.NoError(t, err)
		require.False(t, ok)
		var t2 int64
		require.Eventually(t, func() bool {
			var err error
			t2, ok, err = b.Acquire(ctx, "c", lease, long)
			return err == nil && ok
		}, 5*time.Second, 20*time.Millisecond, "taken over once it ran out")
		require.Greater(t, t2, t1)
		ok, err = a.Renew(ctx, "c", lease, t1, long)
		require.NoError(t, err)
		require.False(t, ok, "the old holder cannot renew a lease that ran out")

		// renewed in time, it does not run out
		t3, ok, err := a.Acquire(ctx, "e", lease, 300*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		for range 4 {
			time.Sleep(100 * time.Millisecond)
			ok, err := a.Renew(ctx, "e", lease, t3, 300*time.Millisecond)
			require.NoError(t, err)
			require.True(t, ok)
		}
		_, ok, err = b.Acquire(ctx, "e", lease, long)
		require.NoError(t, err)
		require.False(t, ok, "a renewed lease is still held")
	})

	t.Run("concurrent acquires: one wins", func(t *testing.T) {
		_, a, b := pair(t)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			l := a
			if i%2 == 1 {
				l = b
			}
			wg.Go(func() {
				_, ok, err := l.Acquire(ctx, "c", lease, long)
				if err == nil && ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
	})

	t.Run("a superseded owner's ack is fenced", func(t *testing.T) {
		s, a, b := pair(t)
		create(t, s, conv("f"))
		const leg = "botframework/f-bot"
		appendN(t, s, "f", 5, leg)
		name := bridge.OutboxLease(leg)
		t1, ok, err := a.Acquire(ctx, "f", name, 100*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, a.AckFenced(ctx, "f", leg, 1, t1))
		// a stalls; its lease runs out and b takes the leg over
		var t2 int64
		require.Eventually(t, func() bool {
			var err error
			t2, ok, err = b.Acquire(ctx, "f", name, long)
			return err == nil && ok
		}, 5*time.Second, 20*time.Millisecond)
		require.NoError(t, b.AckFenced(ctx, "f", leg, 2, t2))
		err = a.AckFenced(ctx, "f", leg, 4, t1)
		require.ErrorIs(t, err, bridge.ErrFenced, "the stale owner's ack")
		cur, err := s.Cursor(ctx, "f", leg)
		require.NoError(t, err)
		require.Equal(t, int64(2), cur, "a fenced ack leaves the cursor")
		require.NoError(t, b.AckFenced(ctx, "f", leg, 3, t2))
		require.NoError(t, b.Release(ctx, "f", name, t2))
		// released with no new owner: the token is still the newest, its ack is safe
		require.NoError(t, b.AckFenced(ctx, "f", leg, 4, t2))
		cur, err = s.Cursor(ctx, "f", leg)
		require.NoError(t, err)
		require.Equal(t, int64(4), cur)
		require.Empty(t, pending(t, s))
		// a token never issued for the leg is fenced; a fenced ack of an unknown conversation is unknown
		require.ErrorIs(t, a.AckFenced(ctx, "f", "desk/other", 0, t2), bridge.ErrFenced)
		require.ErrorIs(t, a.AckFenced(ctx, "ghost", leg, 0, 1), bridge.ErrUnknownConversation)
	})

	t.Run("a due timer is claimed once", func(t *testing.T) {
		s, a, b := pair(t)
		create(t, s, conv("t"))
		due := time.Now().Add(-time.Second).Truncate(time.Millisecond)
		require.NoError(t, s.SetTimer(ctx, "t", "inactivity", due))
		got, err := s.DueTimers(ctx, time.Now(), 0)
		require.NoError(t, err)
		require.Len(t, got, 1)
		tm := got[0]
		var wins atomic.Int32
		var token atomic.Int64
		var wg sync.WaitGroup
		for i := range 16 {
			l := a
			if i%2 == 1 {
				l = b
			}
			wg.Go(func() {
				tok, ok, err := l.ClaimTimer(ctx, tm, long)
				if err == nil && ok {
					wins.Add(1)
					token.Store(tok)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load(), "one claim of a due timer")

		// handled: moved to its next due time, then released. A process that read the old due
		// time claims nothing, though the lease is free.
		next := time.Now().Add(-time.Millisecond).Truncate(time.Millisecond)
		require.NoError(t, s.SetTimer(ctx, "t", "inactivity", next))
		require.NoError(t, a.Release(ctx, "t", bridge.TimerLease("inactivity"), token.Load()))
		_, ok, err := b.ClaimTimer(ctx, tm, long)
		require.NoError(t, err)
		require.False(t, ok, "a timer that was moved is not claimed at its old due time")
		tok, ok, err := b.ClaimTimer(ctx, bridge.Timer{ConversationID: "t", Name: "inactivity", Due: next}, long)
		require.NoError(t, err)
		require.True(t, ok, "claimed at its new due time")
		require.Greater(t, tok, token.Load())
		// removed: nothing to claim
		require.NoError(t, b.Release(ctx, "t", bridge.TimerLease("inactivity"), tok))
		require.NoError(t, s.SetTimer(ctx, "t", "inactivity", time.Time{}))
		_, ok, err = a.ClaimTimer(ctx, bridge.Timer{ConversationID: "t", Name: "inactivity", Due: next}, long)
		require.NoError(t, err)
		require.False(t, ok, "a removed timer is not claimed")

		// a claimer that dies: its lease runs out and the timer, still due, is claimed again
		require.NoError(t, s.SetTimer(ctx, "t", "offer", due))
		ot := bridge.Timer{ConversationID: "t", Name: "offer", Due: due}
		_, ok, err = a.ClaimTimer(ctx, ot, 100*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		require.Eventually(t, func() bool {
			_, ok, err := b.ClaimTimer(ctx, ot, long)
			return err == nil && ok
		}, 5*time.Second, 20*time.Millisecond, "claimed again once the dead claimer's lease ran out")
	})
}

// RunSharedValues checks the contract of bridge.SharedValues with two stores on the same
// (fresh, empty) data, as two processes.
func RunSharedValues(t *testing.T, newPair func(t *testing.T) (a, b bridge.Store)) {
	ctx := context.Background()
	a, b := newPair(t)
	sa, ok := a.(bridge.SharedValues)
	require.True(t, ok)
	sb, ok := b.(bridge.SharedValues)
	require.True(t, ok)
	got := make([][]byte, 16)
	var wg sync.WaitGroup
	for i := range got {
		s := sa
		if i%2 == 1 {
			s = sb
		}
		wg.Go(func() {
			v, err := s.InitValue(ctx, "secret", []byte{byte('a' + i)})
			if err == nil {
				got[i] = v
			}
		})
	}
	wg.Wait()
	require.NotNil(t, got[0])
	for i := range got {
		require.Equal(t, got[0], got[i], "every process gets the first value")
	}
	v, err := b.Value(ctx, "", "secret")
	require.NoError(t, err)
	require.Equal(t, got[0], v, "an own value like any other")
	again, err := sb.InitValue(ctx, "secret", []byte("other"))
	require.NoError(t, err)
	require.Equal(t, got[0], again, "a later call does not replace it")
	other, err := sa.InitValue(ctx, "key", []byte("k"))
	require.NoError(t, err)
	require.Equal(t, []byte("k"), other)
}
