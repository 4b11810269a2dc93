package redis

import (
	"context"
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bfbridge/bfbridge/bridge"
)

// The cross-instance wake-ups of Watch (see the package documentation, "Wake-ups").
//
// Store.mu guards the watchers (Store.watchers), the subscriber's state (subStarted, subUp,
// subReady, subEverUp) and closed. It is a leaf: nothing else is locked, no Redis command is
// made and no callback is called while it is held (bridge.Waiters.Fire starts goroutines).

// wakeChannel is the pub/sub channel the append script publishes every append's hint on.
func (s *Store) wakeChannel() string { return s.prefix + "wake" }

// parseWake reads the hint of an append: "<seq>:<conversation id>".
func parseWake(payload string) (convID string, seq int64, ok bool) {
	n, id, found := strings.Cut(payload, ":")
	if !found {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(n, 10, 64)
	return id, seq, err == nil
}

// subPing is how long the subscriber waits for a message before it pings its connection, and
// then how long it waits for the pong before it takes the connection for dead.
const subPing = 5 * time.Second

// addWatcherLocked registers call for a record past after on convID, and starts the subscriber
// when it is not running. It returns the stop function and the channel closed once the
// subscription is live. The caller holds mu.
func (s *Store) addWatcherLocked(convID string, after int64, call func()) (stop func() bool, ready <-chan struct{}) {
	byAfter := s.watchers[convID]
	if byAfter == nil {
		byAfter = map[int64]*bridge.Waiters{}
		s.watchers[convID] = byAfter
	}
	w := byAfter[after]
	if w == nil {
		w = &bridge.Waiters{}
		byAfter[after] = w
	}
	stop = w.Add(call)
	if !s.subStarted {
		s.subStarted = true
		s.subReady = make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		s.subStop = cancel
		s.subDone = make(chan struct{})
		go s.subscriber(ctx)
	}
	return stop, s.subReady
}

// fire wakes the watchers of convID waiting for a record at or before seq, and moves its track.
// While this process appends to convID, the wake-up waits for the append to return (endAppend):
// the hint of its own append often comes first, and a reader woken then would find the record
// not yet in the track's tail, and read Redis. An erase wakes at once.
func (s *Store) fire(convID string, seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hintLocked(convID, seq)
	if s.appending[convID] > 0 && seq != math.MaxInt64 {
		s.deferred[convID] = max(s.deferred[convID], seq)
		return
	}
	s.fireLocked(convID, seq)
}

// beginAppend records that this process appends to convID (see fire).
func (s *Store) beginAppend(convID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appending[convID]++
}

// endAppend records the end of an append to convID, with its record when it appended one
// (rec.Activity nil otherwise), and wakes the watchers for it and for the hints that came
// meanwhile.
func (s *Store) endAppend(convID string, rec bridge.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := int64(-1)
	if rec.Activity != nil {
		s.appendedLocked(convID, rec)
		seq = rec.Seq
		s.hintLocked(convID, seq)
	}
	if s.appending[convID]--; s.appending[convID] > 0 {
		s.deferred[convID] = max(s.deferred[convID], seq)
		return
	}
	delete(s.appending, convID)
	if d, ok := s.deferred[convID]; ok {
		seq = max(seq, d)
		delete(s.deferred, convID)
	}
	if seq >= 0 {
		s.fireLocked(convID, seq)
	}
}

// fireLocked wakes the watchers of convID waiting for a record at or before seq. The caller
// holds mu.
func (s *Store) fireLocked(convID string, seq int64) {
	byAfter := s.watchers[convID]
	for after, w := range byAfter {
		if after < seq {
			w.Fire()
			delete(byAfter, after)
		}
	}
	if len(byAfter) == 0 {
		delete(s.watchers, convID)
	}
}

// fireAllLocked wakes every watcher (a reconnection, a close), and forgets every track: hints
// may have been lost. The caller holds mu.
func (s *Store) fireAllLocked() {
	clear(s.logs)
	for id, byAfter := range s.watchers {
		for _, w := range byAfter {
			w.Fire()
		}
		delete(s.watchers, id)
	}
}

// sweepLocked drops the watchers that were all stopped (readers that left), and the tracks
// idle since trackIdle. The caller holds mu.
func (s *Store) sweepLocked() {
	defer s.sweepTracksLocked(time.Now())
	for id, byAfter := range s.watchers {
		for after, w := range byAfter {
			if w.Waiting() == 0 {
				delete(byAfter, after)
			}
		}
		if len(byAfter) == 0 {
			delete(s.watchers, id)
		}
	}
}

// setUp records that the subscription is live (up) or not. Coming back up after having been up
// wakes every watcher: hints published meanwhile are lost, so they read the log again.
func (s *Store) setUp(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if up == s.subUp || s.closed {
		return
	}
	s.subUp = up
	if !up {
		s.subReady = make(chan struct{})
		clear(s.logs) // hints may be lost from now on (cache.go)
		return
	}
	close(s.subReady)
	if s.subEverUp {
		s.log.Info().Msg("redis store: wake-up subscription back; waking every watcher")
		s.fireAllLocked()
	}
	s.subEverUp = true
}

// subscriber holds the store's one subscription (SUBSCRIBE <prefix>wake on a connection of its
// own) until ctx ends, dispatching each append's hint to this process's watchers. go-redis
// reconnects and subscribes again after a connection error; a connection that answers no ping
// is replaced.
func (s *Store) subscriber(ctx context.Context) {
	defer close(s.subDone)
	ps := s.subscribe(ctx)
	if ps == nil {
		return
	}
	defer func() { _ = ps.Close() }()
	pinged := false // a ping is outstanding
	swept := time.Now()
	for ctx.Err() == nil {
		if time.Since(swept) >= subPing { // readers that left, also while hints keep coming
			s.mu.Lock()
			s.sweepLocked()
			s.mu.Unlock()
			swept = time.Now()
		}
		m, err := ps.ReceiveTimeout(ctx, subPing)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if !pinged {
					pinged = true
					if ps.Ping(ctx) == nil {
						continue
					}
				}
				// no pong in time, or the ping failed: a new connection
				s.log.Warn().Msg("redis store: wake-up subscription not answering; reconnecting")
			} else {
				s.log.Warn().Err(err).Msg("redis store: wake-up subscription lost; reconnecting")
			}
			s.setUp(false)
			pinged = false
			_ = ps.Close()
			if sleep(ctx, 100*time.Millisecond) != nil {
				return
			}
			if ps = s.subscribe(ctx); ps == nil {
				return
			}
			continue
		}
		pinged = false
		switch m := m.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.wakeChannel() {
				s.setUp(true)
			}
		case *goredis.Message:
			if v, isPut := strings.CutPrefix(m.Payload, "v"); isPut {
				if id, version, ok := parseWake(v); ok {
					s.putHint(id, version)
				}
			} else if id, seq, ok := parseWake(m.Payload); ok {
				s.fire(id, seq)
			}
		}
	}
}

// subscribe opens the subscription, and keeps it where stopSubscriber can close it; nil when
// the subscriber is stopping.
func (s *Store) subscribe(ctx context.Context) *goredis.PubSub {
	ps := s.rdb.Subscribe(ctx, s.wakeChannel())
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		_ = ps.Close()
		return nil
	}
	s.subPS = ps
	return ps
}

// stopSubscriber ends the subscriber, if it runs, and waits for it: closing its subscription
// ends the read it waits in.
func (s *Store) stopSubscriber() {
	s.mu.Lock()
	stop, done, ps := s.subStop, s.subDone, s.subPS
	s.subStop, s.subPS = nil, nil
	if stop != nil {
		stop() // under mu: subscribe sees it, and keeps no new subscription
	}
	s.mu.Unlock()
	if stop != nil {
		if ps != nil {
			_ = ps.Close()
		}
		<-done
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
