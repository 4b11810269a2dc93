package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// kind is what a write request does.
type kind uint8

const (
	kindCreate kind = iota + 1
	kindPut
	kindAppend
	kindAck
	kindSweep
	kindValue
	kindTimer
	kindBlob
	kindErase
)

// A request's state decides who owns it: while queued the caller may abandon it (its context
// ended); once the writer has taken it, the caller waits for the commit.
const (
	stateQueued int32 = iota
	stateTaken
	stateAbandoned
)

// request is one write waiting for the writer goroutine. The writer fills in the results and
// closes done after the transaction holding the write has committed (or failed).
type request struct {
	kind  kind
	state atomic.Int32
	done  chan struct{}
	conv  string
	// lazy: nobody waits for the commit (an ack), so the request alone does not start one
	// before Options.AckWait has passed.
	lazy bool

	// create, put: the conversation's JSON (as stored, with its new version); append: the
	// activity's, without its id (enc.WithoutID); value: the value (nil: remove it); blob: the data.
	body []byte
	legs []bridge.Leg         // create, put: the conversation's legs
	snap *bridge.Conversation // create, put: a copy of the conversation as stored, for the cache
	// put: the version the caller read; create: the version of the conversation found.
	version int64
	created bool         // create: the conversation was created
	found   []byte       // create: the JSON of the conversation found, when not created
	mine    []bridge.Leg // create, put: the legs indexed to the conversation once written

	stored []byte             // append: the activity's JSON with its id, as committed
	at     int64              // append: the commit's time
	from   bridge.Role        // append
	act    *activity.Activity // append: owned by the writer until done is closed
	idem   string             // append: the idempotency key, "" for none
	prevID string             // append: a.ID before the writer set it, restored on failure
	to     []string           // append: the legs it is addressed to
	toJSON []byte             // append: to, encoded (nil when empty)
	trace  string             // append: the W3C trace context, "" for none

	leg   string // ack: the leg; value: the key; timer: the name; blob: the id
	seq   int64  // ack: the input; append: the result; timer: the due time (0: remove it)
	dup   bool   // append: the idempotency key was seen before
	drop  bool   // value, timer: remove it
	ctype string // blob: the content type

	cutoff  int64    // sweep: conversations last written before this are expired
	removed []string // sweep: the conversations it removed
	more    bool     // sweep: it ran out of budget, so another step may find more

	err error
}

// enqueue hands r to the writer without waiting for its commit.
func (s *Store) enqueue(ctx context.Context, r *request) error {
	r.done = make(chan struct{})
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.queue <- r:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sqlite store: %w", ctx.Err())
	}
}

// submit hands r to the writer and waits for its result.
func (s *Store) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite store: %w", err)
	}
	r.done = make(chan struct{})
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case s.queue <- r:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return fmt.Errorf("sqlite store: %w", ctx.Err())
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(stateQueued, stateAbandoned) {
			return fmt.Errorf("sqlite store: %w", ctx.Err())
		}
		<-r.done // the writer holds it: its commit is at most one batch away
		return r.err
	}
}

// batcher is the writer's batch in the making: eager counts the requests someone waits for.
type batcher struct {
	reqs  []*request
	eager int
	timer *time.Timer
}

// writer is the only goroutine that writes. It takes every queued request (up to BatchMax),
// waits up to AckWait for another write while it holds only acks and up to BatchWait for more
// once it holds one, commits them in one transaction, and then answers each caller. On Close it
// commits whatever is still queued and returns.
func (s *Store) writer() {
	defer close(s.writerDone)
	b := &batcher{reqs: make([]*request, 0, s.opts.BatchMax), timer: time.NewTimer(time.Hour)}
	b.timer.Stop()
	bs := &batchState{meta: map[string]convMeta{}, known: map[string]convMeta{}}
	for {
		b.reqs, b.eager = b.reqs[:0], 0
		select {
		case r := <-s.queue:
			s.take(b, r)
		case <-s.quit:
			for {
				b.reqs, b.eager = b.reqs[:0], 0
				if s.drain(b); len(b.reqs) == 0 {
					return
				}
				s.commit(bs, b.reqs)
			}
		}
		s.drain(b)
		if b.eager == 0 && len(b.reqs) > 0 && s.opts.AckWait > 0 {
			s.hold(b, s.opts.AckWait, func() bool { return b.eager > 0 })
			s.drain(b)
		}
		if b.eager > 0 && s.opts.BatchWait > 0 {
			s.hold(b, s.opts.BatchWait, func() bool { return false })
		}
		if len(b.reqs) > 0 {
			s.commit(bs, b.reqs)
		}
	}
}

// hold takes requests as they come for up to wait, until the batch is full, enough reports
// true, or the store closes.
func (s *Store) hold(b *batcher, wait time.Duration, enough func() bool) {
	if len(b.reqs) >= s.opts.BatchMax || enough() {
		return
	}
	b.timer.Reset(wait)
	defer b.timer.Stop()
	for len(b.reqs) < s.opts.BatchMax && !enough() {
		select {
		case r := <-s.queue:
			s.take(b, r)
		case <-b.timer.C:
			return
		case <-s.quit:
			return
		}
	}
}

// take adds r to the batch unless its caller has abandoned it.
func (s *Store) take(b *batcher, r *request) {
	if r.state.CompareAndSwap(stateQueued, stateTaken) {
		b.reqs = append(b.reqs, r)
		if !r.lazy {
			b.eager++
		}
	}
}

// drain takes queued requests without waiting, until the batch is full or the queue empty.
func (s *Store) drain(b *batcher) {
	for len(b.reqs) < s.opts.BatchMax {
		select {
		case r := <-s.queue:
			s.take(b, r)
		default:
			return
		}
	}
}

// commit applies the batch in one transaction and answers every caller. When one request's
// statement fails, that request alone gets the error and the rest are tried again (at most twice),
// so one bad write cannot fail its neighbours; when the commit itself fails, every caller gets it.
func (s *Store) commit(b *batchState, batch []*request) {
	for attempt := 0; ; attempt++ {
		bad, err := s.tryCommit(b, batch)
		if err == nil {
			s.stats.txs.Add(1)
			s.stats.writes.Add(uint64(len(batch)))
			s.publish(batch)
			for _, r := range batch {
				close(r.done)
			}
			return
		}
		err = fmt.Errorf("sqlite store: write: %w", err)
		if bad >= 0 && attempt < 2 && len(batch) > 1 {
			s.log.Warn().Err(err).Str("conv_id", batch[bad].conv).Msg("write failed; retrying the rest of its batch")
			batch[bad].err = err
			close(batch[bad].done)
			batch = append(batch[:bad:bad], batch[bad+1:]...)
			continue
		}
		s.stats.failed.Add(1)
		s.log.Error().Err(err).Int("writes", len(batch)).Msg("transaction failed")
		for _, r := range batch {
			r.err = err
			close(r.done)
		}
		return
	}
}

// tryCommit runs one transaction over the batch. On failure it rolls back, restores the ids it
// set on activities, and returns the index of the request whose statement failed (-1 when the
// transaction itself failed).
func (s *Store) tryCommit(b *batchState, batch []*request) (int, error) {
	b.ctx = context.Background()
	b.now = s.opts.Clock().UnixNano()
	b.stmts = [nWriteStmts]*sql.Stmt{}
	clear(b.meta)
	tx, err := s.wdb.BeginTx(b.ctx, nil)
	if err != nil {
		return -1, err
	}
	b.tx = tx
	bad, err := -1, error(nil)
	for i, r := range batch {
		r.err = nil
		if err = s.apply(b, r); err != nil {
			bad = i
			break
		}
	}
	if err == nil {
		if err = tx.Commit(); err == nil {
			maps.Copy(b.known, b.meta)
			return 0, nil
		}
	}
	_ = tx.Rollback()
	// A failed commit may or may not have happened, and a failed statement may mean the file
	// is not what the writer thought: read the database again.
	clear(b.known)
	for _, r := range batch {
		if r.kind == kindAppend {
			r.act.ID = r.prevID
		}
	}
	return bad, err
}

// publish tells readers about a committed batch: it advances the cached last sequence numbers,
// calls Watch callbacks, caches written conversations, and forgets swept ones.
func (s *Store) publish(batch []*request) {
	now := time.Now()
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range batch {
		if r.err != nil {
			continue
		}
		switch r.kind {
		case kindAppend:
			if !r.dup {
				at := time.Unix(0, r.at).UTC()
				c.advance(r.conv, bridge.Record{Seq: r.seq, From: r.from, Activity: r.act, At: at, To: r.to, Raw: r.stored, Trace: r.trace}, now)
			}
		case kindCreate:
			if r.created {
				c.created(r.snap, r.mine)
			}
		case kindPut:
			c.put(r.snap, r.mine)
		case kindSweep:
			for _, id := range r.removed {
				c.forget(id)
			}
		case kindErase:
			c.forget(r.conv)
		}
	}
}
