package directline

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Shutdown returns within its context even when every stream is stuck writing to a client
// that does not read (each holding its lock for up to writeWait): it closes them all at once,
// and cuts off those that have not closed when ctx is done.
func TestShutdownIsBoundedByItsContext(t *testing.T) {
	f := newFixture(t, nil)
	const n = 20
	for range n {
		c := f.start(t)
		dial(t, c.StreamURL)
	}
	require.Eventually(t, func() bool { return f.srv.Streams() == n }, 5*time.Second, 10*time.Millisecond)

	f.srv.streams.mu.Lock()
	var stuck []*stream
	for st := range f.srv.streams.open {
		stuck = append(stuck, st)
	}
	f.srv.streams.mu.Unlock()
	for _, st := range stuck { // as a write blocked on a full socket holds it
		st.mu.Lock()
	}
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			for _, st := range stuck {
				st.mu.Unlock()
			}
		}
	}
	defer unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f.srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), time.Second)
	case <-time.After(3 * time.Second):
		unlock()
		<-done
		t.Fatalf("Shutdown ignored its context: still running after 3s with %d stuck streams", n)
	}
	unlock()
	require.Eventually(t, func() bool { return f.srv.Streams() == 0 }, 5*time.Second, 10*time.Millisecond, "the cut-off streams end")
}
