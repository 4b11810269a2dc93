package directline

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The per-conversation rate limiters do not pile up: once a conversation has been quiet long
// enough for its bucket to be full again, its limiter is dropped (a new one is the same).
func TestIdleLimitersArePruned(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RatePerConversation = 2 })
	var mu sync.Mutex
	now := time.Now()
	f.srv.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	for i := range 1000 {
		require.True(t, f.srv.allow(fmt.Sprint("conv", i)))
	}
	for range 5 { // a busy conversation, over its burst
		f.srv.allow("busy")
	}
	require.False(t, f.srv.allow("busy"), "over the limit")
	f.srv.limMu.Lock()
	require.Len(t, f.srv.limiters, 1001)
	f.srv.limMu.Unlock()

	advance(2 * time.Minute)
	for range 6 {
		advance(time.Second) // busy stays busy: over its burst every second
		require.True(t, f.srv.allow("busy"))
		f.srv.allow("busy")
		f.srv.allow("busy")
	}
	f.srv.limMu.Lock()
	n := len(f.srv.limiters)
	_, busy := f.srv.limiters["busy"]
	f.srv.limMu.Unlock()
	require.Equal(t, 1, n, "only the busy conversation's limiter is left")
	require.True(t, busy)
	require.False(t, f.srv.allow("busy"), "the busy conversation keeps its state")

	f.srv.limMu.Lock()
	before := f.srv.limiters["busy"]
	f.srv.limMu.Unlock()
	for range 70 { // past the next sweep, busy all along
		advance(time.Second)
		f.srv.allow("busy")
		f.srv.allow("busy")
		f.srv.allow("busy")
	}
	f.srv.limMu.Lock()
	after := f.srv.limiters["busy"]
	f.srv.limMu.Unlock()
	require.Same(t, before, after, "a busy conversation's limiter is not dropped")
}
