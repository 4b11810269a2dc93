package ttlmap

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newMap(c *clock, sweepEvery time.Duration) *Map[[]byte] {
	return New(Options[[]byte]{TTL: time.Hour, MaxSize: 10, Size: func(b []byte) int64 { return int64(len(b)) }, SweepEvery: sweepEvery, Now: c.now})
}

func TestPutGet(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newMap(c, 0)
	require.True(t, m.Put("a", []byte("12345")))
	got, ok := m.Get("a")
	require.True(t, ok)
	require.Equal(t, []byte("12345"), got)
	_, ok = m.Get("b")
	require.False(t, ok)

	require.True(t, m.Put("b", []byte("12345")), "exactly full")
	require.False(t, m.Put("c", []byte("1")), "over the budget")
	require.True(t, m.Put("b", []byte("1234")), "replacing frees the old size")
	require.True(t, m.Put("c", []byte("1")))

	c.add(time.Hour)
	_, ok = m.Get("a")
	require.True(t, ok, "served for its whole TTL")
	c.add(time.Second)
	_, ok = m.Get("a")
	require.False(t, ok, "expired")
}

func TestSweep(t *testing.T) {
	for _, tc := range []struct {
		name       string
		sweepEvery time.Duration
		wait       time.Duration
		room       bool
	}{
		{"every put", 0, 0, true},
		{"sweep not due yet", 2 * time.Hour, 0, false},
		{"sweep due", 2 * time.Hour, time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			m := newMap(c, tc.sweepEvery)
			require.True(t, m.Put("a", []byte("1234567890")))
			c.add(time.Hour + time.Second + tc.wait)
			require.Equal(t, tc.room, m.Put("b", []byte("1")), "the expired value's room")
		})
	}
}

func TestConcurrent(t *testing.T) {
	m := New(Options[int]{TTL: time.Minute, MaxSize: 1 << 20, Size: func(int) int64 { return 1 }})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				key := string(rune('a' + (i+j)%26))
				m.Put(key, j)
				m.Get(key)
			}
		})
	}
	wg.Wait()
}
