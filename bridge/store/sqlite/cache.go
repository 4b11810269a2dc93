package sqlite

import (
	"sync"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
)

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
// not ""), unless entries were forgotten since or a newer one is cached. Only the leg it was found
// by is indexed: another of its legs may be indexed to another conversation.
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
		e.conv = conv.Clone()
	}
	if key != "" && c.byLeg[key] == "" {
		c.index(e, conv.ID, key)
	}
}

// created caches a conversation the writer has just created (a copy no one else holds), with
// an empty log and the legs indexed to it. The caller holds the lock.
func (c *cache) created(conv *bridge.Conversation, legs []bridge.Leg) {
	e := c.m[conv.ID]
	if e == nil {
		e = &entry{}
		c.m[conv.ID] = e
	}
	e.exists, e.last, e.hasLast, e.tail, e.cursors = true, -1, true, nil, nil
	c.setConv(e, conv, legs)
}

// put caches a conversation the writer has just replaced (a copy no one else holds). The caller
// holds the lock.
func (c *cache) put(conv *bridge.Conversation, legs []bridge.Leg) {
	e := c.m[conv.ID]
	if e == nil {
		e = &entry{}
		c.m[conv.ID] = e
	}
	e.exists = true
	c.setConv(e, conv, legs)
}

// setConv caches conv and indexes the legs the store indexes to it. The caller holds the lock.
func (c *cache) setConv(e *entry, conv *bridge.Conversation, legs []bridge.Leg) {
	e.conv = conv
	for _, l := range legs {
		if k := l.Key(); c.byLeg[k] != conv.ID {
			c.index(e, conv.ID, k)
		}
	}
}

// index maps a leg key to the conversation of e. The caller holds the lock.
func (c *cache) index(e *entry, convID, key string) {
	c.byLeg[key] = convID
	e.legs = append(e.legs, key)
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
