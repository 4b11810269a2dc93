package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/internal/enc"
)

// kind is what a write request does.
type kind uint8

const (
	kindPut kind = iota + 1
	kindAppend
	kindAck
	kindSweep
	kindValue
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

	body   []byte               // put: the conversation's JSON; append: the activity's, without its id (enc.WithoutID)
	legs   []bridge.Leg         // put: its legs
	snap   *bridge.Conversation // put: a copy of the conversation, for the cache
	stored []byte               // append: the activity's JSON with its id, as committed
	at     int64                // append: the commit's time

	from   bridge.Role        // append
	act    *activity.Activity // append: owned by the writer until done is closed
	idem   string             // append: the idempotency key, "" for none
	prevID string             // append: a.ID before the writer set it, restored on failure

	leg string // ack: the leg; value: the key
	seq int64  // ack: the input; append: the result
	dup bool   // append: the idempotency key was seen before

	cutoff  int64    // sweep: conversations last written before this are expired
	removed []string // sweep: the conversations it removed
	more    bool     // sweep: it ran out of budget, so another step may find more

	err error
}

// Statements of the writer, prepared once on the write connection.
const (
	stTouch = iota
	stConvLog
	stIdem
	stInsert
	stPut
	stLeg
	stUnpurge
	stDropLog
	stAck
	stValue
	nWriteStmts
)

var writeSQL = [nWriteStmts]string{
	stTouch:   `UPDATE conversations SET updated = ? WHERE id = ?`,
	stConvLog: `SELECT updated, (SELECT COALESCE(MAX(seq), -1) FROM log WHERE conv_id = ?1) FROM conversations WHERE id = ?1`,
	stIdem:    `SELECT seq FROM log WHERE conv_id = ? AND idem_key = ?`,
	stInsert:  `INSERT INTO log (conv_id, seq, from_role, activity, at, idem_key) VALUES (?, ?, ?, ?, ?, ?)`,
	stPut:     `INSERT INTO conversations (id, body, updated) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated = excluded.updated`,
	stLeg:     `INSERT INTO legs (channel, channel_conv_id, conv_id) VALUES (?, ?, ?) ON CONFLICT (channel, channel_conv_id) DO UPDATE SET conv_id = excluded.conv_id`,
	stUnpurge: `DELETE FROM purge WHERE conv_id = ?`,
	stDropLog: `DELETE FROM log WHERE conv_id = ?`,
	stValue:   `INSERT INTO kv (key, value, updated) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated`,
	stAck:     `INSERT INTO cursors (conv_id, leg, seq) VALUES (?, ?, ?) ON CONFLICT (conv_id, leg) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > cursors.seq`,
}

type writeStmts [nWriteStmts]*sql.Stmt

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	for i, q := range writeSQL {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			w.close()
			return fmt.Errorf("sqlite store: prepare: %w", err)
		}
		w[i] = st
	}
	return nil
}

func (w *writeStmts) close() {
	for _, st := range w { // closed, not cleared: calls racing Close get "statement is closed"
		if st != nil {
			st.Close()
		}
	}
}

func unknown(convID string) error {
	return fmt.Errorf("conversation %q: %w", convID, bridge.ErrUnknownConversation)
}

// PutConversation implements bridge.Store. It returns once the conversation is committed.
func (s *Store) PutConversation(ctx context.Context, c *bridge.Conversation) error {
	if c == nil || c.ID == "" {
		return errors.New("sqlite store: put conversation: no conversation id")
	}
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("sqlite store: encode conversation %q: %w", c.ID, err)
	}
	return s.submit(ctx, &request{kind: kindPut, conv: c.ID, body: body, legs: c.Legs(), snap: c.Clone()})
}

// Append implements bridge.Store. It returns once the record is committed and fsynced, and a is
// not retained afterwards. If ctx ends while the write is still queued, nothing is appended and the
// context's error is returned; once the writer holds the write, Append waits for its commit.
func (s *Store) Append(ctx context.Context, convID string, from bridge.Role, a *activity.Activity, idemKey string) (int64, bool, error) {
	if a == nil {
		return 0, false, errors.New("sqlite store: append: nil activity")
	}
	body, err := enc.WithoutID(a)
	if err != nil {
		return 0, false, fmt.Errorf("sqlite store: encode activity: %w", err)
	}
	r := &request{kind: kindAppend, conv: convID, from: from, act: a, idem: idemKey, body: body}
	if err := s.submit(ctx, r); err != nil {
		return 0, false, err
	}
	return r.seq, r.dup, nil
}

// Ack implements bridge.Store. Unlike the memory store, it returns ErrUnknownConversation for a
// conversation that does not exist, so that no cursor outlives its conversation. For a
// conversation known to exist it returns at once, and the cursor is committed with the next
// batch: a cursor lost in a crash only makes a leg be delivered again what it already had, under
// the same ids (the Store contract), and not waiting saves an exchange two commits.
func (s *Store) Ack(ctx context.Context, convID, leg string, seq int64) error {
	if s.cache.ack(convID, leg, seq) {
		return s.enqueue(ctx, &request{kind: kindAck, conv: convID, leg: leg, seq: seq})
	}
	if err := s.submit(ctx, &request{kind: kindAck, conv: convID, leg: leg, seq: seq}); err != nil {
		return err
	}
	s.cache.ack(convID, leg, seq)
	return nil
}

// PutValue implements bridge.Store: key is stored with value in the next committed batch.
func (s *Store) PutValue(ctx context.Context, key string, value []byte) error {
	return s.submit(ctx, &request{kind: kindValue, leg: key, body: append([]byte(nil), value...)})
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

// writer is the only goroutine that writes. It takes every queued request (up to BatchMax,
// waiting up to BatchWait for more once it has one), commits them in one transaction, and then
// answers each caller. On Close it commits whatever is still queued and returns.
func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]*request, 0, s.opts.BatchMax)
	var timer *time.Timer
	if s.opts.BatchWait > 0 {
		timer = time.NewTimer(time.Hour)
		timer.Stop()
	}
	bs := &batchState{meta: map[string]convMeta{}, known: map[string]convMeta{}}
	for {
		batch = batch[:0]
		select {
		case r := <-s.queue:
			batch = s.take(batch, r)
		case <-s.quit:
			for {
				batch = s.drain(batch[:0])
				if len(batch) == 0 {
					return
				}
				s.commit(bs, batch)
			}
		}
		batch = s.drain(batch)
		if timer != nil && len(batch) > 0 && len(batch) < s.opts.BatchMax {
			timer.Reset(s.opts.BatchWait)
		wait:
			for len(batch) < s.opts.BatchMax {
				select {
				case r := <-s.queue:
					batch = s.take(batch, r)
				case <-timer.C:
					break wait
				case <-s.quit:
					break wait
				}
			}
			timer.Stop()
		}
		if len(batch) > 0 {
			s.commit(bs, batch)
		}
	}
}

// take adds r to the batch unless its caller has abandoned it.
func (s *Store) take(batch []*request, r *request) []*request {
	if r.state.CompareAndSwap(stateQueued, stateTaken) {
		batch = append(batch, r)
	}
	return batch
}

// drain takes queued requests without waiting, until the batch is full or the queue empty.
func (s *Store) drain(batch []*request) []*request {
	for len(batch) < s.opts.BatchMax {
		select {
		case r := <-s.queue:
			batch = s.take(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// convMeta is what the writer knows of an existing conversation: its last sequence number and
// the write time stored in its row.
type convMeta struct{ last, updated int64 }

// batchState is the writer's view of one transaction.
type batchState struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts [nWriteStmts]*sql.Stmt // bound to tx on first use
	now   int64
	// meta holds the conversations this transaction has read or written, as they will be once
	// it commits; known holds them as committed. The writer alone writes the file, so known stays
	// true as long as every commit's outcome is known; it is dropped when a commit fails.
	meta  map[string]convMeta
	known map[string]convMeta
}

// conv returns what is known of a conversation, reading it from the database when needed.
// ok is false when the conversation does not exist.
func (b *batchState) conv(s *Store, id string) (m convMeta, ok bool, err error) {
	if m, ok := b.meta[id]; ok {
		return m, true, nil
	}
	if m, ok := b.known[id]; ok {
		return m, true, nil
	}
	switch err := b.queryRow(s, stConvLog, id).Scan(&m.updated, &m.last); {
	case errors.Is(err, sql.ErrNoRows):
		return m, false, nil
	case err != nil:
		return m, false, err
	}
	b.meta[id] = m
	return m, true, nil
}

func (b *batchState) stmt(s *Store, i int) *sql.Stmt {
	if b.stmts[i] == nil {
		b.stmts[i] = b.tx.StmtContext(b.ctx, s.w[i])
	}
	return b.stmts[i]
}

func (b *batchState) exec(s *Store, i int, args ...any) (sql.Result, error) {
	return b.stmt(s, i).ExecContext(b.ctx, args...)
}

func (b *batchState) queryRow(s *Store, i int, args ...any) *sql.Row {
	return b.stmt(s, i).QueryRowContext(b.ctx, args...)
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

// apply performs one request inside the transaction. Errors about the request itself (an
// unknown conversation, an activity that does not encode) go to r.err; a returned error means a
// statement failed and the transaction must be rolled back.
func (s *Store) apply(b *batchState, r *request) error {
	switch r.kind {
	case kindPut:
		return s.applyPut(b, r)
	case kindAppend:
		r.prevID = r.act.ID
		return s.applyAppend(b, r)
	case kindAck:
		return s.applyAck(b, r)
	case kindSweep:
		return s.applySweep(b, r)
	case kindValue:
		_, err := b.exec(s, stValue, r.leg, r.body, b.now)
		return err
	}
	return fmt.Errorf("unknown request kind %d", r.kind)
}

func (s *Store) applyPut(b *batchState, r *request) error {
	if _, err := b.exec(s, stPut, r.conv, r.body, b.now); err != nil {
		return err
	}
	for _, l := range r.legs {
		if _, err := b.exec(s, stLeg, l.Channel, l.ConversationID, r.conv); err != nil {
			return err
		}
	}
	// A conversation put again under the id of one the sweep removed starts with an empty log.
	res, err := b.exec(s, stUnpurge, r.conv)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n > 0 {
		if _, err := b.exec(s, stDropLog, r.conv); err != nil {
			return err
		}
	}
	if m, ok, err := b.conv(s, r.conv); err != nil {
		return err
	} else if ok {
		m.updated = b.now
		if n > 0 {
			m.last = -1
		}
		b.meta[r.conv] = m
	}
	return nil
}

func (s *Store) applyAppend(b *batchState, r *request) error {
	r.seq, r.dup = 0, false
	m, ok, err := b.conv(s, r.conv)
	if err != nil {
		return err
	}
	if !ok {
		r.err = unknown(r.conv)
		return nil
	}
	// The write time restarts the TTL; it is rewritten only when more than touchEvery old, so
	// that appends do not dirty the conversation's row each time.
	if s.opts.TTL > 0 && b.now-m.updated >= int64(s.touchEvery) {
		if _, err := b.exec(s, stTouch, b.now, r.conv); err != nil {
			return err
		}
		m.updated = b.now
		b.meta[r.conv] = m
	}
	if r.idem != "" {
		var seq int64
		switch err := b.queryRow(s, stIdem, r.conv, r.idem).Scan(&seq); {
		case err == nil:
			r.seq, r.dup = seq, true
			r.act.ID = bridge.FormatActivityID(r.conv, seq)
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
	}
	seq := m.last + 1
	r.act.ID = bridge.FormatActivityID(r.conv, seq)
	body, err := enc.WithID(r.body, r.act.ID)
	if err != nil {
		r.act.ID = r.prevID
		r.err = fmt.Errorf("sqlite store: encode activity: %w", err)
		return nil
	}
	var idem any
	if r.idem != "" {
		idem = r.idem
	}
	if _, err := b.exec(s, stInsert, r.conv, seq, string(r.from), body, b.now, idem); err != nil {
		return err
	}
	r.stored, r.at = body, b.now
	m.last = seq
	b.meta[r.conv] = m
	r.seq = seq
	return nil
}

func (s *Store) applyAck(b *batchState, r *request) error {
	if _, ok, err := b.conv(s, r.conv); err != nil {
		return err
	} else if !ok {
		r.err = unknown(r.conv)
		return nil
	}
	_, err := b.exec(s, stAck, r.conv, r.leg, r.seq)
	return err
}

// publish tells readers about a committed batch: it advances the cached last sequence numbers,
// calls Watch callbacks, and forgets swept conversations.
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
				c.advance(r.conv, bridge.Record{Seq: r.seq, From: r.from, Activity: r.act, At: at, Raw: r.stored}, now)
			}
		case kindPut:
			e := c.m[r.conv]
			if e == nil {
				e = &entry{}
				c.m[r.conv] = e
			} else if !e.exists {
				e.last, e.hasLast, e.tail = -1, true, nil // a put may also have dropped a purged log
			}
			e.exists = true
			c.setConv(e, r.snap)
		case kindSweep:
			for _, id := range r.removed {
				c.forget(id)
			}
		}
	}
}
