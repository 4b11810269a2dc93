package redis

import (
	"math"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bfbridge/bfbridge/bridge"
)

// What a Store keeps in memory to spare round trips on the hot path (issue 19: an exchange made
// 19 round trips, 6 now). Redis stays the truth, shared by every instance; each cache below says
// why what it answers is what Redis would have answered.
//
// Logs (track, under Store.mu with the watchers it serves): while the wake-up subscription is
// live, every append to any conversation on any instance is published, in the order the appends
// ran (one Redis node runs the scripts one at a time and publishes in order). A conversation's
// track holds the highest seq this process knows of, learned from reads of the log, its own
// appends and the hints, and the records up to it that it appended or read, consecutively. A
// track is made by a Watch once the subscription is live, and every hint received from then on
// moves it: so its last is never past the log's, and any record past it is either an append
// whose hint is still on its way (and will wake the watchers when it arrives, as it would
// have after a read of the log) or one made by this process (which moves the track when its
// Append returns, and wakes the watchers only then: see fire). That is what lets Watch skip its
// read of the log's length, and Since answer from memory when the reader is at the known last
// (nothing to read) or the tail holds everything from its position up to it. A read answered so
// may miss an append of another instance whose hint is still in flight (well under a millisecond
// on one box): the same answer as a read made that moment earlier, and that hint wakes the
// reader again. When the subscription drops, hints may be lost: every track is forgotten (and
// every watcher woken, see setUp), to be rebuilt from reads. Tracks without watchers are dropped
// after trackIdle; an erase's hint drops the track at once. A Cluster forwards publishes between
// its nodes, with no ordering guarantee to lean on across a failover, so a Store on a Cluster
// keeps no tracks.
//
// A track also keeps its conversation once read or put here. Puts publish their new version on
// the same channel, so a put's hint comes before the hints of the appends after it: a copy is
// dropped when a put's hint names a newer version; one read from Redis is kept only if no newer
// version was hinted meanwhile; and a read of the log that finds records past the track's last
// (appends whose hints, and perhaps a put's before them, are still on their way) drops it too.
// So a reader that got a record from memory gets the conversation as of that record or later. As
// for the log, a conversation answered from memory may miss a put of another instance whose hint
// is in flight: what a read that moment earlier would have said. Writes are not at risk: a put
// from a stale copy fails its version check (ErrVersionConflict, and the copy is dropped), and
// a lookup by a leg the copy does not list reads Redis.
//
// Legs (caches.legs, under cmu): the conversation id a leg key points to. A leg key moves to
// another conversation only when the one it points to does not exist (claimLeg's take-over, or
// after an erase or expiry): so ConversationByLeg reads the cached conversation by id, and a
// conversation that is gone sends it back to the leg key. The lookup still refreshes the leg
// key's TTL, at most once per legRefresh, well within the TTL, so the key outlives its use as
// before.
//
// Cursors (caches.curs, under cmu): Acquire of an outbox lease reads the leg's cursor in the
// same script, and the outbox reads the cursor right after taking the lease. Until the lease's
// TTL has run since it was taken, no other process can hold it, so the cursor moves only through
// this holder's AckFenced (which the cache follows; an unfenced Ack drops the entry): Cursor
// answers from it once, within a third of that TTL.

// Bounds of the caches.
const (
	tailMax    = 16               // records kept per tracked conversation
	trackIdle  = 30 * time.Second // a track with no watcher is dropped after this
	legMax     = 100_000          // leg keys cached; the map is emptied when it would grow past
	legRefresh = time.Minute      // a leg key's TTL is refreshed at most this often (TTL/8 when shorter)
)

// track is what this process knows of one conversation's log (see above). The caller holds mu.
type track struct {
	last    int64           // the highest seq known; -1: an empty log
	hasLast bool            // last was read (false: made by a Watch whose read has not returned)
	tail    []bridge.Record // records up to last, consecutive; empty when unknown
	used    time.Time       // the last Watch or Since that used it

	conv     *bridge.Conversation // the conversation, when known at convSeen; never changed (copies go out)
	convSeen int64                // the highest version of the conversation hinted or read
}

// oneNode reports whether rdb talks to one node (not a Cluster): then the Store keeps tracks.
func oneNode(rdb goredis.UniversalClient) bool {
	_, cluster := rdb.(*goredis.ClusterClient)
	return !cluster
}

// trackLocked returns the track of convID, making one when the subscription is live and make
// is set; nil otherwise. The caller holds mu.
func (s *Store) trackLocked(convID string, make bool) *track {
	if !s.oneNode || !s.subUp || s.closed {
		return nil
	}
	t := s.logs[convID]
	if t == nil && make {
		t = &track{last: -1}
		s.logs[convID] = t
	}
	if t != nil {
		t.used = time.Now()
	}
	return t
}

// hintLocked moves the track of convID on a hint of seq (math.MaxInt64: erased). The caller
// holds mu. The tail stays: it answers only while it ends at last (see push).
func (s *Store) hintLocked(convID string, seq int64) {
	t := s.logs[convID]
	switch {
	case t == nil:
	case seq == math.MaxInt64:
		delete(s.logs, convID)
	case seq > t.last:
		t.last = seq
	}
}

// learnRead records a read of the log that found last as its highest seq (a lower bound: hints
// received since the track was made may say more).
func (s *Store) learnRead(convID string, t *track, last int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs[convID] != t { // forgotten meanwhile: the subscription dropped
		return
	}
	if last > t.last {
		t.conv = nil // appends whose hints are on their way: a put before them may be too
	}
	t.last, t.hasLast = max(t.last, last), true
}

// appendedLocked records this process's append of rec to convID. Its own hint may have come
// first. The caller holds mu.
func (s *Store) appendedLocked(convID string, rec bridge.Record) {
	t := s.logs[convID]
	switch {
	case t == nil:
	case !t.hasLast || rec.Seq < t.last:
		t.last = max(t.last, rec.Seq)
	default:
		t.last = rec.Seq
		t.push(rec)
	}
}

// push appends rec to the tail, keeping it consecutive and tailMax records long at most.
func (t *track) push(rec bridge.Record) {
	if n := len(t.tail); n > 0 && t.tail[n-1].Seq != rec.Seq-1 {
		t.tail = t.tail[:0]
	}
	if len(t.tail) == tailMax {
		copy(t.tail, t.tail[1:])
		t.tail = t.tail[:tailMax-1]
	}
	t.tail = append(t.tail, rec)
}

// cachedSince answers Since from the track when the reader is at the known last (nothing to
// return) or its tail holds every record from after+1 up to it; ok is false when Redis must be
// read. A tracked conversation exists: an erase drops its track (its hint), and one that
// expires had no write for the TTL, while the caller was reading it.
func (s *Store) cachedSince(convID string, after int64, limit int) (recs []bridge.Record, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.trackLocked(convID, false)
	switch {
	case t == nil || !t.hasLast:
		return nil, false
	case after >= t.last:
		return nil, true
	case len(t.tail) == 0 || t.tail[len(t.tail)-1].Seq != t.last || after+1 < t.tail[0].Seq:
		return nil, false
	}
	recs = t.tail[after+1-t.tail[0].Seq:]
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	return append([]bridge.Record(nil), recs...), true
}

// learnSince records what a read of the log returned (consecutive records): when it reaches the
// known last, its end becomes the tail.
func (s *Store) learnSince(convID string, recs []bridge.Record) {
	if len(recs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.trackLocked(convID, false)
	end := recs[len(recs)-1].Seq
	if t == nil || !t.hasLast || end < t.last {
		return
	}
	if n := len(t.tail); end == t.last && n > 0 && t.tail[n-1].Seq == end {
		return // the tail already ends there
	}
	if end > t.last {
		t.conv = nil // appends whose hints are on their way: a put before them may be too
	}
	t.last = end
	t.tail = append(t.tail[:0], recs[max(len(recs)-tailMax, 0):]...)
}

// putHint records the hint of a put of the conversation at version: older copies are dropped.
func (s *Store) putHint(convID string, version int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.logs[convID]
	if t == nil {
		return
	}
	t.convSeen = max(t.convSeen, version)
	if t.conv != nil && t.conv.Version < version {
		t.conv = nil
	}
}

// cachedConv returns a copy of the tracked conversation, when known.
func (s *Store) cachedConv(convID string) (*bridge.Conversation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.trackLocked(convID, false)
	if t == nil || t.conv == nil {
		return nil, false
	}
	return t.conv.Clone(), true
}

// learnConv keeps c (a copy no one else holds) as the tracked conversation, unless a newer
// version was hinted or kept meanwhile.
func (s *Store) learnConv(c *bridge.Conversation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.trackLocked(c.ID, false)
	if t == nil || c.Version < t.convSeen || (t.conv != nil && c.Version < t.conv.Version) {
		return
	}
	t.conv, t.convSeen = c, c.Version
}

// forgetConv drops the tracked conversation (a put found another version).
func (s *Store) forgetConv(convID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.logs[convID]; t != nil {
		t.conv = nil
	}
}

// sweepTracksLocked drops the tracks unused for trackIdle with no watcher. The caller holds mu.
func (s *Store) sweepTracksLocked(now time.Time) {
	for id, t := range s.logs {
		if now.Sub(t.used) >= trackIdle && len(s.watchers[id]) == 0 {
			delete(s.logs, id)
		}
	}
}

// legEntry is a cached leg key: the conversation it points to, and when its TTL was refreshed.
type legEntry struct {
	conv      string
	refreshed time.Time
}

// curEntry is the cursor read by Acquire of an outbox lease, and followed by its AckFenced.
type curEntry struct {
	token int64
	cur   int64
	valid time.Time // answered until then
}

// caches are the leg and cursor caches and the times of the last full TTL refreshes, guarded
// by their own leaf lock (never held with mu).
type caches struct {
	cmu     sync.Mutex
	legs    map[string]legEntry
	curs    map[string]curEntry  // conversation id + "\x00" + leg
	touches map[string]time.Time // conversation id -> when this process last refreshed all its keys
}

// touchTTL is the TTL argument of a conversation's script (luaTouch): the TTL, when this
// process last refreshed every key of the conversation touchEvery ago or more (or never), and
// then records it; minus the TTL (a light touch) otherwise. So a conversation's keys expire
// between TTL - 2·touchEvery and TTL after its last write (a refresh that failed is made again
// at the next write after touchEvery), rather than TTL after it, for one round of PEXPIREs per
// touchEvery per process instead of one per write.
func (s *Store) touchTTL(convID string) int64 {
	if s.ttl <= 0 {
		return 0
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if time.Since(s.touches[convID]) < s.touchEvery() {
		return -s.ttl
	}
	if len(s.touches) >= legMax {
		clear(s.touches)
	}
	s.touches[convID] = time.Now()
	return s.ttl
}

// touched records a full refresh of the conversation's keys made outside touchTTL (creation).
func (s *Store) touched(convID string) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if len(s.touches) >= legMax {
		clear(s.touches)
	}
	s.touches[convID] = time.Now()
}

// touchEvery is how often a process refreshes every key of a conversation it writes: a minute,
// or an eighth of the TTL when shorter.
func (s *Store) touchEvery() time.Duration { return s.legRefreshEvery() }

func (s *Store) legRefreshEvery() time.Duration {
	if s.ttl <= 0 {
		return 0 // keys kept forever: nothing to refresh
	}
	return min(legRefresh, time.Duration(s.ttl)*time.Millisecond/8)
}

// cachedLeg returns the conversation id cached for leg, when its TTL needs no refresh yet.
func (s *Store) cachedLeg(leg string) (string, bool) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	e, ok := s.legs[leg]
	if !ok || (s.ttl > 0 && time.Since(e.refreshed) >= s.legRefreshEvery()) {
		return "", false
	}
	return e.conv, true
}

func (s *Store) learnLeg(leg, conv string) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if len(s.legs) >= legMax {
		clear(s.legs)
	}
	s.legs[leg] = legEntry{conv: conv, refreshed: time.Now()}
}

func (s *Store) forgetLeg(leg string) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	delete(s.legs, leg)
}

func curKey(convID, leg string) string { return convID + "\x00" + leg }

// learnCursor records the cursor read with the outbox lease token.
func (s *Store) learnCursor(convID, leg string, token, cur int64, ttl time.Duration) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if len(s.curs) >= legMax {
		clear(s.curs)
	}
	s.curs[curKey(convID, leg)] = curEntry{token: token, cur: cur, valid: time.Now().Add(ttl / 3)}
}

// ackedCursor follows a fenced acknowledgement of token.
func (s *Store) ackedCursor(convID, leg string, token, seq int64) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	k := curKey(convID, leg)
	if e, ok := s.curs[k]; ok && e.token == token {
		e.cur = max(e.cur, seq)
		s.curs[k] = e
	}
}

// takeCursor returns, once, the cursor cached by the lease's Acquire, while it is valid.
func (s *Store) takeCursor(convID, leg string) (int64, bool) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	k := curKey(convID, leg)
	e, ok := s.curs[k]
	delete(s.curs, k)
	return e.cur, ok && time.Now().Before(e.valid)
}

// dropCursor forgets the cursor of a lease released or fenced.
func (s *Store) dropCursor(convID, leg string) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	delete(s.curs, curKey(convID, leg))
}
