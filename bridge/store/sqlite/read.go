package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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
	rdValue
	nReadStmts
)

var readSQL = [nReadStmts]string{
	rdConv:  `SELECT body FROM conversations WHERE id = ?`,
	rdByLeg: `SELECT c.body FROM legs l JOIN conversations c ON c.id = l.conv_id WHERE l.channel = ? AND l.channel_conv_id = ?`,
	// The log of a conversation that no longer exists is being purged: it reads as empty.
	rdSince: `SELECT seq, from_role, activity, at FROM log
		WHERE conv_id = ?1 AND seq > ?2 AND EXISTS (SELECT 1 FROM conversations WHERE id = ?1)
		ORDER BY seq LIMIT ?3`,
	rdExists: `SELECT 1 FROM conversations WHERE id = ?`,
	rdLast: `SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?1),
		(SELECT COALESCE(MAX(seq), -1) FROM log WHERE conv_id = ?1)`,
	rdCursor: `SELECT seq FROM cursors WHERE conv_id = ? AND leg = ?`,
	rdValue:  `SELECT value FROM kv WHERE key = ?`,
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
	var body []byte
	switch err := row.Scan(&body); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, missing()
	case err != nil:
		return nil, s.readErr("read conversation", err)
	}
	var c bridge.Conversation
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("sqlite store: corrupt conversation: %w", err)
	}
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
		var (
			rec  bridge.Record
			from string
			body []byte
			at   int64
		)
		if err := rows.Scan(&rec.Seq, &from, &body, &at); err != nil {
			return nil, s.readErr("read log", err)
		}
		a, err := activity.Decode(body)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: corrupt record %s: %w", bridge.FormatActivityID(convID, rec.Seq), err)
		}
		rec.From, rec.Activity, rec.At, rec.Raw = bridge.Role(from), a, time.Unix(0, at).UTC(), body
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

// cache holds, per conversation, what readers would otherwise ask the database for: the last
// committed sequence number and the Watch callbacks waiting for it to pass theirs, the conversation itself, the
// cursors acknowledged since Open, and the last few records appended (tailMax at most, dropped
// once idle for tailIdle). The writer creates and advances entries after each commit, so it holds
// one entry per conversation read or written within the TTL; the sweep forgets the ones it
// removes. Readers fill in missing parts from the database; gen, bumped whenever entries are
// forgotten, stops a reader from installing what it read before a sweep.
type cache struct {
	mu     sync.Mutex
	gen    uint64
	closed bool
	m      map[string]*entry
	byLeg  map[string]string // leg key -> conversation id, for the conversations in m
}

type entry struct {
	last    int64
	hasLast bool // last is known
	exists  bool
	waiters bridge.Waiters // called when last advances

	conv    *bridge.Conversation // nil until read or written; replaced, never changed
	legs    []string             // the leg keys byLeg maps to this conversation
	cursors []cursor
	tail    []bridge.Record // the records up to last, consecutive; empty when unknown
	tailAt  time.Time       // when the tail last grew
}

type cursor struct {
	leg string
	seq int64
}

// Bounds of the records kept per conversation for live readers.
const (
	tailMax  = 16
	tailIdle = 30 * time.Second
)

// watch calls fn once the log passes after. The caller holds the cache's lock.
func (e *entry) watch(after int64, fn func()) (stop func() bool) {
	if e.last > after {
		return bridge.FireNow(fn)
	}
	return e.waiters.Add(fn)
}

// advance records a committed append. The caller holds the lock.
func (c *cache) advance(convID string, rec bridge.Record, now time.Time) {
	e := c.m[convID]
	if e == nil {
		e = &entry{last: rec.Seq - 1}
		c.m[convID] = e
	}
	e.exists = true
	switch {
	case !e.hasLast || rec.Seq == e.last+1:
		if !e.hasLast || (len(e.tail) > 0 && e.tail[len(e.tail)-1].Seq != e.last) {
			e.tail = e.tail[:0]
		}
		if len(e.tail) == tailMax {
			copy(e.tail, e.tail[1:])
			e.tail = e.tail[:tailMax-1]
		}
		e.tail = append(e.tail, rec)
		e.tailAt = now
	case rec.Seq > e.last:
		e.tail = nil // a gap: the writer knew better than this entry
	default:
		return
	}
	e.last, e.hasLast = rec.Seq, true
	e.waiters.Fire()
}

// since answers Since from the tail when it holds everything after after; ok is false when the
// database must be read.
func (c *cache) since(convID string, after int64, limit int) (recs []bridge.Record, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[convID]
	if e == nil || !e.exists || !e.hasLast {
		return nil, false
	}
	if after >= e.last {
		return nil, true
	}
	if len(e.tail) == 0 || after+1 < e.tail[0].Seq {
		return nil, false
	}
	recs = e.tail[after+1-e.tail[0].Seq:]
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	return append([]bridge.Record(nil), recs...), true
}

// trimTails drops the tails of conversations that have been quiet for tailIdle, so that idle
// conversations keep no records in memory.
func (c *cache) trimTails(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.m {
		if e.tail != nil && now.Sub(e.tailAt) >= tailIdle {
			e.tail = nil
		}
	}
}

// conversation returns a copy of the cached conversation, or the generation to learn it under.
func (c *cache) conversation(id string) (*bridge.Conversation, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[id]; e != nil && e.conv != nil {
		return e.conv.Clone(), 0, true
	}
	return nil, c.gen, false
}

// conversationByLeg is conversation for a leg key.
func (c *cache) conversationByLeg(key string) (*bridge.Conversation, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[c.byLeg[key]]; e != nil && e.conv != nil {
		return e.conv.Clone(), 0, true
	}
	return nil, c.gen, false
}

// learnConv keeps a conversation a reader loaded under generation gen (found by leg key, when
// not ""), unless entries were forgotten since or a newer one is cached.
func (c *cache) learnConv(conv *bridge.Conversation, gen uint64, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.closed {
		return
	}
	e := c.m[conv.ID]
	if e == nil {
		e = &entry{}
		c.m[conv.ID] = e
	}
	e.exists = true
	if e.conv == nil {
		c.setConv(e, conv.Clone())
	}
	if key != "" && c.byLeg[key] == "" {
		c.byLeg[key] = conv.ID
		e.legs = append(e.legs, key)
	}
}

// setConv caches conv (a copy no one else holds) and indexes its legs. The caller holds the lock.
func (c *cache) setConv(e *entry, conv *bridge.Conversation) {
	e.conv = conv
	for _, l := range conv.Legs() {
		k := l.Key()
		if c.byLeg[k] != conv.ID {
			c.byLeg[k] = conv.ID
			e.legs = append(e.legs, k)
		}
	}
}

// ack records an acknowledged cursor, and reports whether the conversation is known to exist.
func (c *cache) ack(convID, leg string, seq int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[convID]
	if e == nil || !e.exists {
		return false
	}
	for i := range e.cursors {
		if e.cursors[i].leg == leg {
			e.cursors[i].seq = max(e.cursors[i].seq, seq)
			return true
		}
	}
	e.cursors = append(e.cursors, cursor{leg, seq})
	return true
}

// cursor returns the cursor acknowledged since Open, or -1.
func (c *cache) cursor(convID, leg string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[convID]; e != nil {
		for _, cu := range e.cursors {
			if cu.leg == leg {
				return cu.seq
			}
		}
	}
	return -1
}

// learn merges what a reader loaded under generation gen, unless entries were forgotten since,
// and returns the entry (nil when it could not be trusted). The caller holds the lock.
func (c *cache) learn(convID string, gen uint64, exists bool, last int64) *entry {
	if gen != c.gen || c.closed {
		return nil
	}
	e := c.m[convID]
	if e == nil {
		e = &entry{last: last, hasLast: true, exists: exists}
		c.m[convID] = e
		return e
	}
	e.exists = e.exists || exists
	if !e.hasLast || last > e.last {
		e.last, e.hasLast, e.tail = last, true, nil
	}
	return e
}

// forget drops a removed conversation, waking its waiters so that they find it gone. The caller
// holds the lock.
func (c *cache) forget(convID string) {
	if e := c.m[convID]; e != nil {
		e.waiters.Fire()
		for _, k := range e.legs {
			if c.byLeg[k] == convID {
				delete(c.byLeg, k)
			}
		}
		delete(c.m, convID)
	}
	c.gen++
}

// closeAll wakes every waiter; later Watch calls are called back at once.
func (c *cache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for id, e := range c.m {
		e.waiters.Fire()
		delete(c.m, id)
	}
	clear(c.byLeg)
}

// Value implements bridge.Store.
func (s *Store) Value(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	switch err := s.r[rdValue].QueryRowContext(ctx, key).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("value %q: %w", key, bridge.ErrNotFound)
	case err != nil:
		return nil, s.readErr("read value", err)
	}
	return v, nil
}
