package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Statements of the readers, prepared on the read-only pool.
const (
	rdConv = iota
	rdByLeg
	rdSince
	rdExists
	rdLast
	rdCursor
	rdPending
	rdDue
	rdValue
	rdValues
	rdBlob
	nReadStmts
)

var readSQL = [nReadStmts]string{
	rdConv:  `SELECT body, version FROM conversations WHERE id = ?`,
	rdByLeg: `SELECT c.body, c.version FROM legs l JOIN conversations c ON c.id = l.conv_id WHERE l.channel = ? AND l.channel_conv_id = ?`,
	// The log of a conversation that no longer exists is being purged: it reads as empty.
	rdSince: `SELECT seq, from_role, activity, at, to_legs, trace FROM log
		WHERE conv_id = ?1 AND seq > ?2 AND EXISTS (SELECT 1 FROM conversations WHERE id = ?1)
		ORDER BY seq LIMIT ?3`,
	rdExists: `SELECT 1 FROM conversations WHERE id = ?`,
	rdLast: `SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?1),
		(SELECT COALESCE(MAX(seq), -1) FROM log WHERE conv_id = ?1)`,
	rdCursor: `SELECT seq FROM cursors WHERE conv_id = ? AND leg = ?`,
	rdPending: `SELECT a.conv_id, a.leg, a.seq, COALESCE(c.seq, -1) FROM addressed a
		LEFT JOIN cursors c ON c.conv_id = a.conv_id AND c.leg = a.leg
		WHERE a.seq > COALESCE(c.seq, -1)`,
	rdDue:    `SELECT conv_id, name, due FROM timers WHERE due <= ? ORDER BY due, conv_id, name LIMIT ?`,
	rdValue:  `SELECT value FROM vals WHERE conv_id = ? AND key = ?`,
	rdValues: `SELECT conv_id, value FROM vals WHERE key = ?`,
	// The files of a conversation that no longer exists are being removed: they read as absent.
	rdBlob: `SELECT content_type, data FROM blobs
		WHERE conv_id = ?1 AND id = ?2 AND EXISTS (SELECT 1 FROM conversations WHERE id = ?1)`,
}

type readStmts [nReadStmts]*sql.Stmt

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	for i, q := range readSQL {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			r.close()
			return fmt.Errorf("sqlite store: prepare: %w", err)
		}
		r[i] = st
	}
	return nil
}

func (r *readStmts) close() {
	for _, st := range r { // closed, not cleared: calls racing Close get "statement is closed"
		if st != nil {
			st.Close()
		}
	}
}

// readErr wraps an error of the read pool, reporting ErrClosed once the store is closed.
func (s *Store) readErr(what string, err error) error {
	s.closeMu.RLock()
	closed := s.closed
	s.closeMu.RUnlock()
	if closed {
		return ErrClosed
	}
	return fmt.Errorf("sqlite store: %s: %w", what, err)
}

// Conversation implements bridge.Store. Conversations are kept in memory once read or written.
func (s *Store) Conversation(ctx context.Context, id string) (*bridge.Conversation, error) {
	c, gen, ok := s.cache.conversation(id)
	if ok {
		return c, nil
	}
	c, err := s.decodeConv(s.r[rdConv].QueryRowContext(ctx, id), func() error { return unknown(id) })
	if err != nil {
		return nil, err
	}
	s.cache.learnConv(c, gen, "")
	return c, nil
}

// ConversationByLeg implements bridge.Store.
func (s *Store) ConversationByLeg(ctx context.Context, channel, channelConvID string) (*bridge.Conversation, error) {
	key := bridge.Leg{Channel: channel, ConversationID: channelConvID}.Key()
	c, gen, ok := s.cache.conversationByLeg(key)
	if ok {
		return c, nil
	}
	c, err := s.decodeConv(s.r[rdByLeg].QueryRowContext(ctx, channel, channelConvID), func() error {
		return fmt.Errorf("leg %s/%s: %w", channel, channelConvID, bridge.ErrUnknownConversation)
	})
	if err != nil {
		return nil, err
	}
	s.cache.learnConv(c, gen, key)
	return c, nil
}

func (s *Store) decodeConv(row *sql.Row, missing func() error) (*bridge.Conversation, error) {
	var (
		body    []byte
		version int64
	)
	switch err := row.Scan(&body, &version); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, missing()
	case err != nil:
		return nil, s.readErr("read conversation", err)
	}
	return decodeConv(body, version)
}

// decodeConv decodes a stored conversation; version, from its own column, is authoritative.
func decodeConv(body []byte, version int64) (*bridge.Conversation, error) {
	var c bridge.Conversation
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("sqlite store: corrupt conversation: %w", err)
	}
	c.Version = version
	return &c, nil
}

// Since implements bridge.Store. The last records appended since Open are answered from memory
// (readers following a log live read nothing else); older ones are read and decoded afresh.
func (s *Store) Since(ctx context.Context, convID string, after int64, limit int) ([]bridge.Record, error) {
	if recs, ok := s.cache.since(convID, after, limit); ok {
		return recs, nil
	}
	lim := int64(limit)
	if limit <= 0 {
		lim = -1 // SQLite: no limit
	}
	rows, err := s.r[rdSince].QueryContext(ctx, convID, after, lim)
	if err != nil {
		return nil, s.readErr("read log", err)
	}
	defer rows.Close()
	var recs []bridge.Record
	for rows.Next() {
		rec, err := s.scanRecord(convID, rows)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("read log", err)
	}
	if len(recs) > 0 {
		return recs, nil
	}
	var one int
	switch err := s.r[rdExists].QueryRowContext(ctx, convID).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, unknown(convID)
	case err != nil:
		return nil, s.readErr("read conversation", err)
	}
	return nil, nil
}

// scanRecord reads a record of convID's log from rows.
func (s *Store) scanRecord(convID string, rows *sql.Rows) (bridge.Record, error) {
	var (
		rec      bridge.Record
		from     string
		body, to []byte
		at       int64
		trace    sql.NullString
	)
	if err := rows.Scan(&rec.Seq, &from, &body, &at, &to, &trace); err != nil {
		return rec, s.readErr("read log", err)
	}
	a, err := activity.Decode(body)
	if err != nil {
		return rec, fmt.Errorf("sqlite store: corrupt record %s: %w", bridge.FormatActivityID(convID, rec.Seq), err)
	}
	if len(to) > 0 {
		if err := json.Unmarshal(to, &rec.To); err != nil {
			return rec, fmt.Errorf("sqlite store: corrupt record %s: addressees: %w", bridge.FormatActivityID(convID, rec.Seq), err)
		}
	}
	rec.From, rec.Activity, rec.At, rec.Raw, rec.Trace = bridge.Role(from), a, time.Unix(0, at).UTC(), body, trace.String
	return rec, nil
}

// Last implements bridge.Store. It is answered from memory once the conversation has been seen.
func (s *Store) Last(ctx context.Context, convID string) (int64, error) {
	c := &s.cache
	c.mu.Lock()
	if e := c.m[convID]; e != nil && e.exists && e.hasLast {
		last := e.last
		c.mu.Unlock()
		return last, nil
	}
	gen := c.gen
	c.mu.Unlock()
	exists, last, err := s.loadLast(ctx, convID)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	e := c.learn(convID, gen, exists, last)
	if e != nil {
		exists, last = e.exists, e.last
	}
	c.mu.Unlock()
	if !exists {
		return 0, unknown(convID)
	}
	return last, nil
}

// loadLast reads whether the conversation exists and the highest sequence number of its log.
func (s *Store) loadLast(ctx context.Context, convID string) (exists bool, last int64, err error) {
	if err := s.r[rdLast].QueryRowContext(ctx, convID).Scan(&exists, &last); err != nil {
		return false, 0, s.readErr("read log", err)
	}
	if !exists {
		last = -1
	}
	return exists, last, nil
}

// Watch implements bridge.Store. Wake-ups are in-process, fired after the commit. When the last
// sequence number cannot be read, or the store is closed, fn is called at once: a spurious
// wake-up sends the reader to Since, which reports the error.
func (s *Store) Watch(convID string, after int64, fn func()) (stop func() bool) {
	c := &s.cache
	for range 3 {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return bridge.FireNow(fn)
		}
		if e := c.m[convID]; e != nil && e.hasLast {
			stop := e.watch(after, fn)
			c.mu.Unlock()
			return stop
		}
		gen := c.gen
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.BusyWait)
		exists, last, err := s.loadLast(ctx, convID)
		cancel()
		if err != nil {
			s.log.Warn().Err(err).Str("conv_id", convID).Msg("watch: read last sequence number")
			return bridge.FireNow(fn)
		}
		c.mu.Lock()
		if e := c.learn(convID, gen, exists, last); e != nil {
			stop := e.watch(after, fn)
			c.mu.Unlock()
			return stop
		}
		c.mu.Unlock()
	}
	return bridge.FireNow(fn) // the sweep keeps racing the load: let the reader look again
}

// Cursor implements bridge.Store. A leg that never acknowledged anything reads -1.
func (s *Store) Cursor(ctx context.Context, convID, leg string) (int64, error) {
	seq := s.cache.cursor(convID, leg) // acknowledged, perhaps not committed yet
	var stored int64
	switch err := s.r[rdCursor].QueryRowContext(ctx, convID, leg).Scan(&stored); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, s.readErr("read cursor", err)
	default:
		seq = max(seq, stored)
	}
	return seq, nil
}

// Pending implements bridge.Store. It reads every leg's addressed mark against its cursor,
// committed or only acknowledged: it is meant for the start.
func (s *Store) Pending(ctx context.Context) ([]bridge.PendingLeg, error) {
	rows, err := s.r[rdPending].QueryContext(ctx)
	if err != nil {
		return nil, s.readErr("read pending deliveries", err)
	}
	defer rows.Close()
	var out []bridge.PendingLeg
	for rows.Next() {
		var p bridge.PendingLeg
		if err := rows.Scan(&p.ConversationID, &p.Leg, &p.Last, &p.Cursor); err != nil {
			return nil, s.readErr("read pending deliveries", err)
		}
		p.Cursor = max(p.Cursor, s.cache.cursor(p.ConversationID, p.Leg))
		if p.Last > p.Cursor {
			out = append(out, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("read pending deliveries", err)
	}
	return out, nil
}
