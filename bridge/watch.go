package bridge

import "sync/atomic"

// Waiters holds the callbacks that Store.Watch registered on one conversation's log, for Store
// implementations. The store's own lock guards Add and Fire; the stop functions Add returns need
// no lock. The zero value is empty.
type Waiters struct{ list []*waiter }

type waiter struct {
	fn    func()
	state atomic.Int32 // waiting, fired or stopped
}

const (
	waiting int32 = iota
	fired
	stopped
)

// Add registers fn and returns the function that stops it (see Store.Watch). Stopped waiters
// are dropped here and by Fire, so a log nobody appends to does not collect them.
func (ws *Waiters) Add(fn func()) (stop func() bool) {
	keep := ws.list[:0]
	for _, w := range ws.list {
		if w.state.Load() == waiting {
			keep = append(keep, w)
		}
	}
	clear(ws.list[len(keep):])
	w := &waiter{fn: fn}
	ws.list = append(keep, w)
	return w.stop
}

// Fire calls every waiting callback, each in a goroutine of its own, and forgets them all.
func (ws *Waiters) Fire() {
	for _, w := range ws.list {
		if w.state.CompareAndSwap(waiting, fired) {
			go w.fn()
		}
	}
	ws.list = nil
}

func (w *waiter) stop() bool { return w.state.CompareAndSwap(waiting, stopped) }

// FireNow calls fn in a goroutine of its own at once and returns a stop function, for a Watch
// whose condition already holds.
func FireNow(fn func()) (stop func() bool) {
	w := &waiter{fn: fn}
	w.state.Store(fired)
	go fn()
	return w.stop
}

// Notify returns a channel closed once the log of convID holds a record with Seq > after (or
// the store can no longer tell): Store.Watch for readers that select on channels. A reader that
// gives up leaves one stopped callback behind until the log's next append.
func Notify(s Store, convID string, after int64) <-chan struct{} {
	ch := make(chan struct{})
	s.Watch(convID, after, func() { close(ch) })
	return ch
}

// Waiting returns how many registered callbacks are neither fired nor stopped (a store drops a
// Waiters with none).
func (ws *Waiters) Waiting() int {
	n := 0
	for _, w := range ws.list {
		if w.state.Load() == waiting {
			n++
		}
	}
	return n
}
