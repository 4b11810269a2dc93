package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/internal/enc"
)

// Statements of the writer, prepared once on the write connection.
const (
	stTouch = iota
	stConvLog
	stConvBody
	stIdem
	stInsert
	stAddressed
	stCreate
	stPut
	stLegOwner
	stLeg
	stUnpurge
	stDropLog
	stAck
	stValue
	stDropValue
	stTimer
	stDropTimer
	stBlob
	nWriteStmts
)

var writeSQL = [nWriteStmts]string{
	stTouch: `UPDATE conversations SET updated = ? WHERE id = ?`,
	stConvLog: `SELECT updated, version, (SELECT COALESCE(MAX(seq), -1) FROM log WHERE conv_id = ?1)
		FROM conversations WHERE id = ?1`,
	stConvBody:  `SELECT body, version FROM conversations WHERE id = ?`,
	stIdem:      `SELECT seq FROM log WHERE conv_id = ? AND idem_key = ?`,
	stInsert:    `INSERT INTO log (conv_id, seq, from_role, activity, at, idem_key, to_legs, trace) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
	stAddressed: `INSERT INTO addressed (conv_id, leg, seq) VALUES (?, ?, ?) ON CONFLICT (conv_id, leg) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > addressed.seq`,
	stCreate:    `INSERT INTO conversations (id, body, updated, version) VALUES (?, ?, ?, 1)`,
	stPut:       `UPDATE conversations SET body = ?, updated = ?, version = ? WHERE id = ?`,
	stLegOwner:  `SELECT conv_id FROM legs WHERE channel = ? AND channel_conv_id = ?`,
	stLeg:       `INSERT INTO legs (channel, channel_conv_id, conv_id) VALUES (?, ?, ?)`,
	stUnpurge:   `DELETE FROM purge WHERE conv_id = ?`,
	stDropLog:   `DELETE FROM log WHERE conv_id = ?`,
	stAck:       `INSERT INTO cursors (conv_id, leg, seq) VALUES (?, ?, ?) ON CONFLICT (conv_id, leg) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > cursors.seq`,
	stValue:     `INSERT INTO vals (conv_id, key, value, updated) VALUES (?, ?, ?, ?) ON CONFLICT (conv_id, key) DO UPDATE SET value = excluded.value, updated = excluded.updated`,
	stDropValue: `DELETE FROM vals WHERE conv_id = ? AND key = ?`,
	stTimer:     `INSERT INTO timers (conv_id, name, due) VALUES (?, ?, ?) ON CONFLICT (conv_id, name) DO UPDATE SET due = excluded.due`,
	stDropTimer: `DELETE FROM timers WHERE conv_id = ? AND name = ?`,
	stBlob:      `INSERT INTO blobs (conv_id, id, content_type, data) VALUES (?, ?, ?, ?) ON CONFLICT (conv_id, id) DO UPDATE SET content_type = excluded.content_type, data = excluded.data`,
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

// CreateConversation implements bridge.Store. It returns once the conversation is committed.
// The writer checks that the id is free and the legs are not taken, so of concurrent creations
// of one id exactly one is created.
func (s *Store) CreateConversation(ctx context.Context, c *bridge.Conversation) (*bridge.Conversation, bool, error) {
	if c == nil || c.ID == "" {
		return nil, false, errors.New("sqlite store: create conversation: no conversation id")
	}
	snap := c.Clone()
	snap.Version = 1
	body, err := json.Marshal(snap)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite store: encode conversation %q: %w", c.ID, err)
	}
	r := &request{kind: kindCreate, conv: c.ID, body: body, legs: c.Legs(), snap: snap}
	if err := s.submit(ctx, r); err != nil {
		return nil, false, err
	}
	if r.created {
		c.Version = 1
		return snap.Clone(), true, nil
	}
	found, err := decodeConv(r.found, r.version)
	if err != nil {
		return nil, false, err
	}
	return found, false, nil
}

// PutConversation implements bridge.Store. It returns once the conversation is committed, or
// with ErrVersionConflict when the writer finds another version stored.
func (s *Store) PutConversation(ctx context.Context, c *bridge.Conversation) error {
	if c == nil || c.ID == "" {
		return errors.New("sqlite store: put conversation: no conversation id")
	}
	snap := c.Clone()
	snap.Version = c.Version + 1
	body, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("sqlite store: encode conversation %q: %w", c.ID, err)
	}
	r := &request{kind: kindPut, conv: c.ID, body: body, legs: c.Legs(), snap: snap, version: c.Version}
	if err := s.submit(ctx, r); err != nil {
		return err
	}
	c.Version = snap.Version
	return nil
}

// Append implements bridge.Store. It returns once the record is committed and fsynced. If ctx
// ends while the write is still queued, nothing is appended and the context's error is returned;
// once the writer holds the write, Append waits for its commit.
func (s *Store) Append(ctx context.Context, convID string, e bridge.Entry) (int64, bool, error) {
	if e.Activity == nil {
		return 0, false, errors.New("sqlite store: append: nil activity")
	}
	body, err := enc.WithoutID(e.Activity)
	if err != nil {
		return 0, false, fmt.Errorf("sqlite store: encode activity: %w", err)
	}
	r := &request{kind: kindAppend, conv: convID, from: e.From, act: e.Activity, idem: e.Key, body: body, to: e.To, trace: e.Trace}
	if len(e.To) > 0 {
		if r.toJSON, err = json.Marshal(e.To); err != nil {
			return 0, false, fmt.Errorf("sqlite store: encode addressees: %w", err)
		}
	}
	if err := s.submit(ctx, r); err != nil {
		return 0, false, err
	}
	return r.seq, r.dup, nil
}

// Ack implements bridge.Store. It returns ErrUnknownConversation for a conversation that does
// not exist, so that no cursor outlives or predates its conversation. For a
// conversation known to exist it returns once the cursor is in memory and the write queued: the
// writer commits it with the next batch, or within Options.AckWait when no other write comes
// (see the package doc). A cursor lost in a crash only makes a leg be delivered again what it
// already had, under the same ids (the Store contract), and not waiting saves a commit per
// delivery.
func (s *Store) Ack(ctx context.Context, convID, leg string, seq int64) error {
	if s.cache.ack(convID, leg, seq) {
		return s.enqueue(ctx, &request{kind: kindAck, conv: convID, leg: leg, seq: seq, lazy: true})
	}
	if err := s.submit(ctx, &request{kind: kindAck, conv: convID, leg: leg, seq: seq}); err != nil {
		return err
	}
	s.cache.ack(convID, leg, seq)
	return nil
}

// convMeta is what the writer knows of an existing conversation: its last sequence number, the
// write time stored in its row and its version.
type convMeta struct{ last, updated, version int64 }

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
	switch err := b.queryRow(s, stConvLog, id).Scan(&m.updated, &m.version, &m.last); {
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

// apply performs one request inside the transaction. Errors about the request itself (an
// unknown conversation, a version conflict, an activity that does not encode) go to r.err; a
// returned error means a statement failed and the transaction must be rolled back.
func (s *Store) apply(b *batchState, r *request) error {
	switch r.kind {
	case kindCreate:
		return s.applyCreate(b, r)
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
		return s.applyValue(b, r)
	case kindTimer:
		return s.applyTimer(b, r)
	case kindBlob:
		return s.applyBlob(b, r)
	case kindErase:
		return s.applyErase(b, r)
	}
	return fmt.Errorf("unknown request kind %d", r.kind)
}

// applyCreate stores a new conversation, or reads the one found under its id.
func (s *Store) applyCreate(b *batchState, r *request) error {
	r.created = false
	if _, ok, err := b.conv(s, r.conv); err != nil {
		return err
	} else if ok {
		return b.queryRow(s, stConvBody, r.conv).Scan(&r.found, &r.version)
	}
	for _, l := range r.legs {
		owner, err := b.legOwner(s, l)
		if err != nil {
			return err
		}
		if owner != "" && owner != r.conv {
			r.err = fmt.Errorf("sqlite store: leg %s of %q: %w", l.Key(), owner, bridge.ErrLegTaken)
			return nil
		}
	}
	if _, err := b.exec(s, stCreate, r.conv, r.body, b.now); err != nil {
		return err
	}
	if err := b.indexLegs(s, r); err != nil {
		return err
	}
	// A conversation created under the id of one the sweep removed starts with an empty log.
	res, err := b.exec(s, stUnpurge, r.conv)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n > 0 {
		if _, err := b.exec(s, stDropLog, r.conv); err != nil {
			return err
		}
	}
	b.meta[r.conv] = convMeta{last: -1, updated: b.now, version: 1}
	r.created = true
	return nil
}

// applyPut replaces a conversation if its version is still the one the caller read.
func (s *Store) applyPut(b *batchState, r *request) error {
	m, ok, err := b.conv(s, r.conv)
	switch {
	case err != nil:
		return err
	case !ok:
		r.err = unknown(r.conv)
		return nil
	case m.version != r.version:
		r.err = fmt.Errorf("sqlite store: conversation %q at version %d, not %d: %w",
			r.conv, m.version, r.version, bridge.ErrVersionConflict)
		return nil
	}
	if _, err := b.exec(s, stPut, r.body, b.now, r.version+1, r.conv); err != nil {
		return err
	}
	if err := b.indexLegs(s, r); err != nil {
		return err
	}
	m.version, m.updated = r.version+1, b.now
	b.meta[r.conv] = m
	return nil
}

// legOwner returns the conversation the leg is indexed to, or "".
func (b *batchState) legOwner(s *Store, l bridge.Leg) (string, error) {
	var owner string
	err := b.queryRow(s, stLegOwner, l.Channel, l.ConversationID).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return owner, err
}

// indexLegs indexes the legs of r's conversation that no conversation holds yet (a leg stays
// indexed to the first conversation that had it), and lists in r.mine the ones indexed to it.
func (b *batchState) indexLegs(s *Store, r *request) error {
	var mine []bridge.Leg
	for _, l := range r.legs {
		owner, err := b.legOwner(s, l)
		if err != nil {
			return err
		}
		if owner == "" {
			if _, err := b.exec(s, stLeg, l.Channel, l.ConversationID, r.conv); err != nil {
				return err
			}
			owner = r.conv
		}
		if owner == r.conv {
			mine = append(mine, l)
		}
	}
	r.mine = mine
	return nil
}

// applyAppend adds a record to the log, or finds the one its idempotency key names.
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
	if err := s.insertRecord(b, r, seq, body); err != nil {
		return err
	}
	r.stored, r.at = body, b.now
	m.last = seq
	b.meta[r.conv] = m
	r.seq = seq
	return nil
}

// insertRecord writes the record and marks it addressed to its legs.
func (s *Store) insertRecord(b *batchState, r *request, seq int64, body []byte) error {
	var idem, to, trace any
	if r.idem != "" {
		idem = r.idem
	}
	if r.trace != "" {
		trace = r.trace
	}
	if r.toJSON != nil {
		to = r.toJSON
	}
	if _, err := b.exec(s, stInsert, r.conv, seq, string(r.from), body, b.now, idem, to, trace); err != nil {
		return err
	}
	for _, leg := range r.to {
		if _, err := b.exec(s, stAddressed, r.conv, leg, seq); err != nil {
			return err
		}
	}
	return nil
}

// applyAck moves a cursor forward.
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
