// Package redis is a bridge.Store on Redis (7.x, or Valkey), the groundwork of the bridge's
// scale-out (issue 12): several bridge instances share one Redis, single node, Sentinel or
// Cluster alike, through a redis.UniversalClient.
//
// # Keys
//
// Every key starts with Options.Prefix (default "bfbridge:"). A conversation's keys share the
// hash tag {id} (an empty id, one holding a brace, or one starting with "~" is tagged "~" and its hex
// instead), so that in a Cluster they live in one slot and each change of a conversation is
// one Lua script (EVALSHA, falling back to EVAL):
//
//	{id}:conv    hash: v (the version), j (the conversation's JSON)
//	{id}:log     stream: the log; seq n has the explicit id 0-(n+1), so that seq and stream id
//	             map onto each other and Since is one XRANGE; fields f (role), a (the activity's
//	             JSON, id set), t (addressed legs, JSON) and at (unix ns)
//	{id}:idem    hash: idempotency key -> seq
//	{id}:addr    hash: leg -> the highest seq addressed to it
//	{id}:cur     hash: leg -> cursor (the ack script only moves it forward)
//	{id}:timers  hash: timer name -> due (unix ms), the truth of the timers index
//	{id}:vals    hash: value key -> value
//	{id}:files   hash: d:<file id> -> data, t:<file id> -> content type (one key rather than
//	             one per file, so that the scripts can refresh its TTL with the others)
//	{id}:lease:<name>  string: the fencing token of the lease's holder, set NX PX (leases, below)
//	{id}:fence   hash: lease name -> the last fencing token issued (TTL: the conversation's)
//
// Append is one script: it checks that the conversation exists and the idempotency key, takes
// XLEN as the next seq (the stream is never trimmed: it expires whole), XADDs with the
// explicit id, records the key and the addressed legs, and refreshes the TTL.
//
// Keys of no one conversation live in other slots, and are written in separate steps:
//
//	leg:<channel>/<id>  the conversation id holding that leg (TTL refreshed by puts and lookups)
//	timers              sorted set of "conv\x00name" scored by due unix ms
//	pending             set of conversations that may have a leg with records past its cursor
//	                    (a superset of Pending; Pending drops those caught up, see there)
//	values              hash of the bridge's own values (conversation ""), never expired
//	vidx:<key>          set of the conversations that have a value under key
//	convs               sorted set of every conversation id, for Conversations (admin.go)
//	wake                the pub/sub channel of the appends' wake-up hints (Wake-ups, below)
//
// In a Cluster these cannot share a script with the conversation's keys, which are the truth:
// the indexes are written in a step of their own, pending and vidx before the conversation's
// script (so that they hold a superset), timers after it. Readers check every entry against the
// conversation's keys and skip what is gone or no longer says the same. They remove an entry
// only when its conversation is gone (pending, vidx) or with a compare-and-delete on its score
// (timers), never on a read that could race with a write. Two SetTimer calls on one timer racing
// from two instances may leave the index at the earlier call's due time (the hash, which readers
// trust, has the later one): the conversation's owner, with the leases of issue 12, is its only
// writer.
//
// CreateConversation claims the legs first (a create-if-absent script per leg key, in its own
// slot), then creates the conversation (create-if-absent on its hash), then claims the legs
// again. A leg held by another conversation that exists is ErrLegTaken (the legs this call
// claimed are released). A leg held by a conversation that does not exist is a creation under
// way or one that crashed: CreateConversation waits up to a second for that conversation to appear
// (ErrLegTaken when it does), then takes the leg over with a compare-and-set. The second claim
// after the creation catches a creation that lost its leg to such a take-over meanwhile: it
// deletes its conversation, still at version 1 with an empty log, and reports ErrLegTaken. So
// of two creations sharing a leg at most one is created; both may fail only when one stalls for
// more than a second between its steps. ConversationByLeg treats a leg whose conversation is
// gone as unknown. PutConversation indexes new legs after the compare-and-swap, where free.
//
// # Wake-ups
//
// Watch wakes a reader on any instance within a round trip of an append on any other: the
// append script PUBLISHes a hint, "<seq>:<conversation id>", on the channel <prefix>wake, and each
// Store holds one subscription to that channel (one connection and one goroutine per process,
// started by the first Watch) that wakes its watchers of that conversation waiting for a record
// at or before seq. The hint carries no data: woken readers read the stream (Since), which is
// the truth. This process's own appends wake its watchers directly.
//
// Why pub/sub as a hint rather than XREAD BLOCK: a blocked XREAD holds a connection for as long
// as it waits, so a process with 10,000 open websockets would need 10,000 connections (or one
// XREAD over all their streams, re-issued whenever the set changes, which a Cluster cannot serve
// across slots). One subscription costs one connection whatever the number of watchers, and the
// publish rides in the append's script, so it costs no round trip. Its price is that every
// instance receives every append's hint (a few dozen bytes, dropped after a map lookup when no
// one here watches the conversation): cost grows with the cluster's append rate, not with
// watchers. Pub/sub is fire-and-forget, so the hint is never trusted for data, and its loss is
// covered: Watch waits until the subscription is live before it reads the log's length (an
// append after that read is published to it); when the subscription's connection drops, or
// answers no ping within 5s, it is replaced, and when it is live again every watcher of the
// process is woken to read the log again (hints published meanwhile are lost). A Watch that
// cannot get a live subscription within 5s fires at once, as one whose read fails.
//
// # Leases
//
// The Store is a bridge.Leaser, so that the Hubs of several instances run each leg's outbox
// pump and each due timer in one process at a time (bridge's package documentation). Acquire is
// a script: when {id}:lease:<name> is absent it takes the next token from {id}:fence (HINCRBY)
// and sets the lease to it with NX semantics and PX the lease's TTL; Renew and Release act only
// when the lease still holds the caller's token. AckFenced is the ack script with one more
// check, in the same script: the fence's last token for the leg's outbox lease is the caller's,
// so an owner whose lease ran out and was taken over cannot move the cursor. ClaimTimer checks,
// in one script, that the timer's hash still says the due time the caller read, and takes the
// timer's lease: of the instances that read a due timer one claims it, and none after its
// handler moved it. The lease and fence keys share the conversation's hash tag, so all of this
// works in a Cluster. The bridge's own values (conversation "") take the tag "~", so the sandbox
// desk's routing lease lives there.
//
// SharedValues' InitValue is HSETNX on the bridge's own values then HGET, in one transaction:
// the generated Direct Line secret and the bot-signing key are created once for all instances.
// They are stored in Redis as they are: protect the server (ACLs, TLS with rediss://).
//
// # Retention
//
// Every key of a conversation expires about Options.TTL (default 24h; negative: never) after the
// conversation's last write: a process's first script on a conversation, and then one every
// minute (an eighth of the TTL when shorter), refreshes all of them; the scripts in between give
// only the keys they create a TTL (see luaTouch), so the keys expire between the TTL less two
// minutes and the TTL after the last write. Global entries of a conversation that expired are
// removed by the readers that meet them.
//
// # Caches
//
// A Store spares the hot path round trips by keeping in memory, with the reason each stays
// right across instances in cache.go: the log's last seq and last few records and the
// conversation, of conversations watched here, kept up to date by the wake-up hints (puts
// publish one too); the conversation id of the legs looked up; the cursor read with an outbox
// lease.
package redis

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/internal/enc"
)

// Options configure a Store.
type Options struct {
	// Client is the Redis connection (a *redis.Client, *redis.ClusterClient or a failover
	// client). Required. The Store does not close it.
	Client goredis.UniversalClient
	// Prefix starts every key. Default: "bfbridge:". It may not hold braces.
	Prefix string
	// TTL is how long a conversation's keys are kept after its last write. Default: 24h;
	// negative keeps them forever.
	TTL time.Duration
	// Log receives what the store notices. Default: discarded.
	Log zerolog.Logger
}

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "bfbridge:"

// Store is a bridge.Store on Redis.
type Store struct {
	rdb    goredis.UniversalClient
	prefix string
	ttl    int64 // milliseconds; 0: keep forever
	log    zerolog.Logger

	// mu guards what follows (see wake.go).
	mu         sync.Mutex
	watchers   map[string]map[int64]*bridge.Waiters // conversation -> after -> watchers
	oneNode    bool                                 // not a Cluster: logs are kept (cache.go), pipelines keep their order
	logs       map[string]*track                    // conversation -> what this process knows of its log
	appending  map[string]int                       // conversation -> appends of this process under way
	deferred   map[string]int64                     // conversation -> highest seq hinted during them (fire)
	closed     bool
	subStarted bool               // the subscriber was started
	subUp      bool               // its subscription is live
	subEverUp  bool               // it has been live before
	subReady   chan struct{}      // closed while the subscription is live
	subStop    context.CancelFunc // ends the subscriber
	subDone    chan struct{}      // closed when it has ended
	subPS      *goredis.PubSub    // its subscription, for stopSubscriber to close

	backfillMu sync.Mutex // guards backfilled (admin.go)
	backfilled bool

	caches // the leg and cursor caches (cache.go)
}

var _ bridge.Store = (*Store)(nil)

// Open returns a Store on opts.Client once Redis answers a PING.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("redis store: no client")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redis store: prefix %q holds a brace", opts.Prefix)
	}
	switch {
	case opts.TTL == 0:
		opts.TTL = 24 * time.Hour
	case opts.TTL < 0:
		opts.TTL = 0
	case opts.TTL < time.Millisecond:
		opts.TTL = time.Millisecond
	}
	opts.Client.AddHook(outageHook{})
	if err := opts.Client.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis store: ping: %w", err)
	}
	// The scripts give keys a TTL with PEXPIRE … NX (luaTouch), which Redis has since 7.0: an
	// older server is refused here rather than failing every write. The probe's key never exists.
	if err := opts.Client.Do(ctx, "PEXPIRE", opts.Prefix+"probe:pexpire-nx", 1000, "NX").Err(); err != nil {
		return nil, fmt.Errorf("redis store: this Redis does not take PEXPIRE with NX (Redis 7.0 or later is needed): %w", err)
	}
	return &Store{rdb: opts.Client, prefix: opts.Prefix, ttl: opts.TTL.Milliseconds(), log: opts.Log,
		watchers: map[string]map[int64]*bridge.Waiters{}, oneNode: oneNode(opts.Client), logs: map[string]*track{},
		appending: map[string]int{}, deferred: map[string]int64{},
		caches: caches{legs: map[string]legEntry{}, curs: map[string]curEntry{}, touches: map[string]time.Time{}}}, nil
}

// Key indexes in convKeys.
const (
	kConv = iota
	kLog
	kIdem
	kAddr
	kCur
	kTimers
	kVals
	kFiles
	nKeys
)

var keyNames = [nKeys]string{"conv", "log", "idem", "addr", "cur", "timers", "vals", "files"}

// tag is the hash tag of a conversation's keys.
func tag(id string) string {
	if id == "" || strings.ContainsAny(id, "{}") || strings.HasPrefix(id, "~") {
		return "{~" + hex.EncodeToString([]byte(id)) + "}"
	}
	return "{" + id + "}"
}

// convKeys returns the conversation's keys, in the order the scripts take them.
func (s *Store) convKeys(id string) []string {
	base := s.prefix + tag(id) + ":"
	keys := make([]string, nKeys)
	for i, n := range keyNames {
		keys[i] = base + n
	}
	return keys
}

func (s *Store) key(i int, id string) string { return s.prefix + tag(id) + ":" + keyNames[i] }
func (s *Store) legKey(leg string) string    { return s.prefix + "leg:" + leg }
func (s *Store) timersKey() string           { return s.prefix + "timers" }
func (s *Store) pendingKey() string          { return s.prefix + "pending" }
func (s *Store) valuesKey() string           { return s.prefix + "values" }
func (s *Store) vidxKey(key string) string   { return s.prefix + "vidx:" + key }

func unknown(id string) error {
	return fmt.Errorf("conversation %q: %w", id, bridge.ErrUnknownConversation)
}

// exists reports whether the conversation id exists.
func (s *Store) exists(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.key(kConv, id)).Result()
	return n == 1, err
}

// CreateConversation implements bridge.Store.
func (s *Store) CreateConversation(ctx context.Context, c *bridge.Conversation) (*bridge.Conversation, bool, error) {
	if c == nil || c.ID == "" {
		return nil, false, errors.New("redis store: create conversation: no conversation id")
	}
	if old, err := s.Conversation(ctx, c.ID); err == nil {
		return old, false, nil
	} else if !errors.Is(err, bridge.ErrUnknownConversation) {
		return nil, false, err
	}
	legs := c.Legs()
	var claimed []string // legs this call indexed, released if it fails
	release := func() {
		for _, l := range claimed {
			if err := releaseScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.legKey(l)}, c.ID).Err(); err != nil {
				s.log.Warn().Err(err).Str("leg", l).Msg("redis store: release a leg")
			}
		}
	}
	for _, l := range legs {
		fresh, err := s.claimLeg(ctx, c.ID, l.Key(), true)
		if err != nil {
			release()
			return nil, false, err
		}
		if fresh {
			claimed = append(claimed, l.Key())
		}
	}
	if err := s.indexConv(ctx, c.ID); err != nil {
		release()
		return nil, false, err
	}
	d := c.Clone()
	d.Version = 1
	j, err := json.Marshal(d)
	if err != nil {
		release()
		return nil, false, fmt.Errorf("redis store: encode conversation %q: %w", c.ID, err)
	}
	s.touched(c.ID)
	res, err := createScript.Run(ctx, s.rdb, s.convKeys(c.ID), s.ttl, j).Slice()
	if err != nil {
		release()
		return nil, false, fmt.Errorf("redis store: create conversation %q: %w", c.ID, err)
	}
	if len(res) == 2 { // created meanwhile by another call with this id
		old, err := decodeConv(res[1])
		if err != nil {
			return nil, false, err
		}
		// release what this call indexed that is not one of the stored conversation's legs
		keep := claimed[:0]
		for _, l := range claimed {
			if !slices.ContainsFunc(old.Legs(), func(o bridge.Leg) bool { return o.Key() == l }) {
				keep = append(keep, l)
			}
		}
		claimed = keep
		release()
		return old, false, nil
	}
	// the legs again: one may have been taken over since, or released by a failed creation of the same id
	for _, l := range legs {
		if _, err := s.claimLeg(ctx, c.ID, l.Key(), false); err != nil {
			if errors.Is(err, bridge.ErrLegTaken) {
				if derr := deleteIfScript.Run(context.WithoutCancel(ctx), s.rdb, s.convKeys(c.ID)).Err(); derr != nil {
					s.log.Warn().Err(derr).Str("conversation", c.ID).Msg("redis store: undo a creation")
				}
				release()
			}
			return nil, false, err
		}
	}
	if err := s.indexConv(ctx, c.ID); err != nil { // again: a reader may have dropped it meanwhile
		return nil, false, err
	}
	c.Version = 1
	return d, true, nil
}

// claimLeg indexes leg under id, and reports whether this call set it. A leg of another
// conversation is ErrLegTaken; one of a conversation that does not exist is taken over after
// waiting for it to appear, when wait is set, or at once.
func (s *Store) claimLeg(ctx context.Context, id, leg string, wait bool) (fresh bool, err error) {
	k := s.legKey(leg)
	existed, err := s.rdb.Exists(ctx, k).Result()
	if err != nil {
		return false, fmt.Errorf("redis store: leg %s: %w", leg, err)
	}
	holder, err := claimScript.Run(ctx, s.rdb, []string{k}, id, s.ttl, "").Text()
	if err != nil {
		return false, fmt.Errorf("redis store: leg %s: %w", leg, err)
	}
	if holder == id {
		return existed == 0, nil
	}
	deadline := time.Now().Add(time.Second)
	for {
		ok, err := s.exists(ctx, holder)
		if err != nil {
			return false, fmt.Errorf("redis store: leg %s: %w", leg, err)
		}
		if ok {
			return false, fmt.Errorf("redis store: leg %s of %q: %w", leg, holder, bridge.ErrLegTaken)
		}
		if !wait || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	got, err := claimScript.Run(ctx, s.rdb, []string{k}, id, s.ttl, holder).Text()
	if err != nil {
		return false, fmt.Errorf("redis store: leg %s: %w", leg, err)
	}
	if got != id {
		return false, fmt.Errorf("redis store: leg %s of %q: %w", leg, got, bridge.ErrLegTaken)
	}
	s.log.Info().Str("leg", leg).Str("from", holder).Str("to", id).Msg("redis store: took over the leg of a conversation that does not exist")
	return true, nil
}

// PutConversation implements bridge.Store.
func (s *Store) PutConversation(ctx context.Context, c *bridge.Conversation) error {
	if c == nil || c.ID == "" {
		return errors.New("redis store: put conversation: no conversation id")
	}
	d := c.Clone()
	d.Version = c.Version + 1
	j, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("redis store: encode conversation %q: %w", c.ID, err)
	}
	r, err := putScript.Run(ctx, s.rdb, s.convKeys(c.ID), s.touchTTL(c.ID), c.Version, j, s.wakeChannel(), c.ID).Int()
	switch {
	case err != nil:
		return fmt.Errorf("redis store: put conversation %q: %w", c.ID, err)
	case r < 0:
		return unknown(c.ID)
	case r == 0:
		s.forgetConv(c.ID) // the caller read another version: perhaps from the cache, before a hint
		return fmt.Errorf("conversation %q not at version %d: %w", c.ID, c.Version, bridge.ErrVersionConflict)
	}
	s.learnConv(d)
	c.Version = d.Version
	if err := s.indexConv(ctx, c.ID); err != nil {
		return err
	}
	for _, l := range c.Legs() { // new legs, where free; refreshes the TTL of the others
		h, err := claimScript.Run(ctx, s.rdb, []string{s.legKey(l.Key())}, c.ID, s.ttl, "").Text()
		if err != nil {
			return fmt.Errorf("redis store: index leg %s: %w", l.Key(), err)
		}
		if h != c.ID {
			s.log.Debug().Str("leg", l.Key()).Str("holder", h).Str("conversation", c.ID).Msg("redis store: leg of another conversation")
		}
	}
	return nil
}

func decodeConv(v any) (*bridge.Conversation, error) {
	str, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("redis store: conversation stored as %T", v)
	}
	var c bridge.Conversation
	if err := json.Unmarshal([]byte(str), &c); err != nil {
		return nil, fmt.Errorf("redis store: decode conversation: %w", err)
	}
	return &c, nil
}

// Conversation implements bridge.Store. A tracked conversation is answered from memory
// (cache.go).
func (s *Store) Conversation(ctx context.Context, id string) (*bridge.Conversation, error) {
	if c, ok := s.cachedConv(id); ok {
		return c, nil
	}
	return s.readConversation(ctx, id)
}

// readConversation reads the conversation from Redis, and keeps a copy when it is tracked.
func (s *Store) readConversation(ctx context.Context, id string) (*bridge.Conversation, error) {
	j, err := s.rdb.HGet(ctx, s.key(kConv, id), "j").Result()
	if errors.Is(err, goredis.Nil) {
		return nil, unknown(id)
	} else if err != nil {
		return nil, fmt.Errorf("redis store: conversation %q: %w", id, err)
	}
	c, err := decodeConv(j)
	if err == nil {
		s.learnConv(c.Clone())
	}
	return c, err
}

// ConversationByLeg implements bridge.Store. The lookup refreshes the leg's TTL (at most once
// per legRefresh: the leg cache, cache.go).
func (s *Store) ConversationByLeg(ctx context.Context, channel, channelConvID string) (*bridge.Conversation, error) {
	leg := bridge.Leg{Channel: channel, ConversationID: channelConvID}.Key()
	if id, ok := s.cachedLeg(leg); ok {
		c, err := s.Conversation(ctx, id)
		if err == nil && !hasLeg(c, leg) { // a leg just added, by a put whose hint is on its way
			c, err = s.readConversation(ctx, id)
		}
		if !errors.Is(err, bridge.ErrUnknownConversation) {
			return c, err
		}
		s.forgetLeg(leg) // gone: the leg key may point elsewhere now
	}
	var cmd *goredis.StringCmd
	if s.ttl > 0 {
		cmd = s.rdb.GetEx(ctx, s.legKey(leg), time.Duration(s.ttl)*time.Millisecond)
	} else {
		cmd = s.rdb.Get(ctx, s.legKey(leg))
	}
	id, err := cmd.Result()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("leg %s: %w", leg, bridge.ErrUnknownConversation)
	} else if err != nil {
		return nil, fmt.Errorf("redis store: leg %s: %w", leg, err)
	}
	c, err := s.Conversation(ctx, id)
	if err == nil && !hasLeg(c, leg) {
		c, err = s.readConversation(ctx, id)
	}
	if err == nil {
		s.learnLeg(leg, id)
	}
	return c, err
}

// hasLeg reports whether c lists the leg key.
func hasLeg(c *bridge.Conversation, leg string) bool {
	_, ok := c.LegWithKey(leg)
	return ok
}

// Append implements bridge.Store.
func (s *Store) Append(ctx context.Context, convID string, e bridge.Entry) (int64, bool, error) {
	a := e.Activity
	if a == nil {
		return 0, false, errors.New("redis store: append: nil activity")
	}
	body, err := enc.WithoutID(a)
	if err != nil {
		return 0, false, fmt.Errorf("redis store: encode activity: %w", err)
	}
	if len(body) < 2 || body[0] != '{' {
		return 0, false, fmt.Errorf("redis store: encode activity: not a JSON object: %.20q", body)
	}
	// the id is convID|%07d: its JSON string, cut before the digits
	idJSON, err := json.Marshal(convID + "|")
	if err != nil {
		return 0, false, fmt.Errorf("redis store: encode activity id: %w", err)
	}
	head := `{"id":` + string(idJSON[:len(idJSON)-1])
	sep := `"` // the object's members follow the id, after a comma unless there are none
	if rest := bytes.TrimLeft(body[1:], " \t\r\n"); len(rest) > 0 && rest[0] != '}' {
		sep = `",`
	}
	tail := sep + string(body[1:]) // one copy of the activity's JSON
	to := ""
	if len(e.To) > 0 {
		b, err := json.Marshal(e.To)
		if err != nil {
			return 0, false, fmt.Errorf("redis store: encode addressees: %w", err)
		}
		to = string(b)
	}
	at := time.Now().UnixNano()
	args := make([]any, 0, 10+len(e.To))
	args = append(args, s.touchTTL(convID), e.Key, string(e.From), head, tail, to, at, s.wakeChannel(), convID, e.Trace)
	for _, l := range e.To {
		args = append(args, l)
	}
	var rec bridge.Record // the record appended, for the track; none on a failure or a repeat
	s.beginAppend(convID)
	// this process's watchers at once; the others through the hint
	defer func() { s.endAppend(convID, rec) }()
	res, err := s.runAppend(ctx, convID, len(e.To) > 0, args)
	if err != nil {
		return 0, false, err
	}
	if res[0] < 0 {
		return 0, false, unknown(convID)
	}
	seq := res[1]
	a.ID = bridge.FormatActivityID(convID, seq)
	if res[0] == 0 {
		return seq, true, nil
	}
	raw := []byte(head + fmt.Sprintf("%07d", seq) + tail) // as the script wrote it
	rec = bridge.Record{Seq: seq, From: e.From, To: e.To, Activity: a, Raw: raw, At: time.Unix(0, at), Trace: e.Trace}
	return seq, false, nil
}

// runAppend runs the append script; pending says the entry is addressed, so that the
// conversation goes into the pending index before the script (it is then a superset of what
// Pending reports) and after it (Pending may have dropped it between the two, having found it
// caught up). On one node the three commands are one pipeline: one connection runs them in order.
func (s *Store) runAppend(ctx context.Context, convID string, pending bool, args []any) ([]int64, error) {
	keys := s.convKeys(convID)
	if pending && s.oneNode {
		pipe := s.rdb.Pipeline()
		pipe.SAdd(ctx, s.pendingKey(), convID)
		run := appendScript.EvalSha(ctx, pipe, keys, args...)
		pipe.SAdd(ctx, s.pendingKey(), convID)
		_, err := pipe.Exec(ctx)
		if run.Err() == nil { // appended; an index write that failed is made again, on its own
			if err != nil {
				if err := s.rdb.SAdd(ctx, s.pendingKey(), convID).Err(); err != nil {
					s.log.Warn().Err(err).Str("conversation", convID).Msg("redis store: index a pending conversation")
				}
			}
			return run.Int64Slice()
		}
		if !goredis.HasErrorPrefix(run.Err(), "NOSCRIPT") {
			return nil, fmt.Errorf("redis store: append to %q: %w", convID, run.Err()) // the script's, not the pipeline's first
		}
		// the script is not loaded (a restarted or flushed server): in steps, which load it
	}
	if pending {
		if err := s.rdb.SAdd(ctx, s.pendingKey(), convID).Err(); err != nil {
			return nil, fmt.Errorf("redis store: index pending conversation %q: %w", convID, err)
		}
	}
	res, err := appendScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("redis store: append to %q: %w", convID, err)
	}
	if pending && res[0] > 0 {
		if err := s.rdb.SAdd(ctx, s.pendingKey(), convID).Err(); err != nil {
			s.log.Warn().Err(err).Str("conversation", convID).Msg("redis store: index a pending conversation")
		}
	}
	return res, nil
}

// streamID is the stream id of seq.
func streamID(seq int64) string { return "0-" + strconv.FormatInt(seq+1, 10) }

// Since implements bridge.Store.
func (s *Store) Since(ctx context.Context, convID string, after int64, limit int) ([]bridge.Record, error) {
	if recs, ok := s.cachedSince(convID, after, limit); ok {
		return recs, nil
	}
	pipe := s.rdb.Pipeline()
	ex := pipe.Exists(ctx, s.key(kConv, convID))
	var xr *goredis.XMessageSliceCmd
	start := streamID(max(after+1, 0))
	if limit > 0 {
		xr = pipe.XRangeN(ctx, s.key(kLog, convID), start, "+", int64(limit))
	} else {
		xr = pipe.XRange(ctx, s.key(kLog, convID), start, "+")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis store: read log of %q: %w", convID, err)
	}
	if ex.Val() == 0 {
		return nil, unknown(convID)
	}
	msgs := xr.Val()
	if len(msgs) == 0 {
		return nil, nil
	}
	out := make([]bridge.Record, 0, len(msgs))
	for _, m := range msgs {
		r, err := decodeRecord(m)
		if err != nil {
			return nil, fmt.Errorf("redis store: log of %q: %w", convID, err)
		}
		out = append(out, r)
	}
	s.learnSince(convID, out)
	return out, nil
}

func decodeRecord(m goredis.XMessage) (bridge.Record, error) {
	ms, n, ok := strings.Cut(m.ID, "-")
	n1, err := strconv.ParseInt(n, 10, 64)
	if !ok || ms != "0" || err != nil || n1 < 1 {
		return bridge.Record{}, fmt.Errorf("stream id %q", m.ID)
	}
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	raw := []byte(str("a"))
	a, err := activity.Decode(raw)
	if err != nil {
		return bridge.Record{}, fmt.Errorf("record %d: %w", n1-1, err)
	}
	r := bridge.Record{Seq: n1 - 1, From: bridge.Role(str("f")), Activity: a, Raw: raw, Trace: str("tp")}
	if t := str("t"); t != "" {
		if err := json.Unmarshal([]byte(t), &r.To); err != nil {
			return bridge.Record{}, fmt.Errorf("record %d: addressees: %w", r.Seq, err)
		}
	}
	if at, err := strconv.ParseInt(str("at"), 10, 64); err == nil {
		r.At = time.Unix(0, at)
	}
	return r, nil
}

// lastSeq returns whether the conversation exists and its log's highest seq.
func (s *Store) lastSeq(ctx context.Context, convID string) (bool, int64, error) {
	pipe := s.rdb.Pipeline()
	ex := pipe.Exists(ctx, s.key(kConv, convID))
	n := pipe.XLen(ctx, s.key(kLog, convID))
	if _, err := pipe.Exec(ctx); err != nil {
		return false, 0, fmt.Errorf("redis store: last of %q: %w", convID, err)
	}
	return ex.Val() == 1, n.Val() - 1, nil
}

// Last implements bridge.Store.
func (s *Store) Last(ctx context.Context, convID string) (int64, error) {
	ok, last, err := s.lastSeq(ctx, convID)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, unknown(convID)
	}
	return last, nil
}

// watchCheck bounds the waits with which Watch learns whether the log is already past after.
const watchCheck = 5 * time.Second

// Watch implements bridge.Store, across instances (see the package documentation). It
// registers fn, waits until the store's wake-up subscription is live, then reads the log's
// length: when the log is already past after, when the conversation does not exist, or when the
// subscription or the read fails, fn is called at once. A conversation tracked since the
// subscription is live needs no read: its track says the last seq (cache.go).
func (s *Store) Watch(convID string, after int64, fn func()) (stop func() bool) {
	var once sync.Once
	call := func() { once.Do(fn) }
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return bridge.FireNow(fn)
	}
	stop, ready := s.addWatcherLocked(convID, after, call)
	t := s.trackLocked(convID, true)
	known := t != nil && t.hasLast
	past := known && t.last > after
	s.mu.Unlock()
	switch {
	case past:
		return s.fireNow(stop, call)
	case known:
		return stop
	}
	ctx, cancel := context.WithTimeout(context.Background(), watchCheck)
	defer cancel()
	var err error
	ok, last := false, int64(0)
	select {
	case <-ready:
		ok, last, err = s.lastSeq(ctx, convID)
	case <-ctx.Done():
		err = ctx.Err() // no subscription: the watcher could miss an append
	}
	if err == nil && ok && t != nil {
		s.learnRead(convID, t, last)
	}
	if err != nil || !ok || last > after {
		return s.fireNow(stop, call)
	}
	return stop
}

// fireNow calls a registered watcher at once, unless an append fired it meanwhile.
func (s *Store) fireNow(stop func() bool, call func()) func() bool {
	if stop() {
		go call()
	}
	return func() bool { return false }
}

// Ack implements bridge.Store.
func (s *Store) Ack(ctx context.Context, convID, leg string, seq int64) error {
	s.dropCursor(convID, leg) // an unfenced move: the cursor cache no longer follows it
	r, err := ackScript.Run(ctx, s.rdb, s.convKeys(convID), s.touchTTL(convID), leg, seq).Int()
	if err != nil {
		return fmt.Errorf("redis store: ack %s of %q: %w", leg, convID, err)
	}
	if r < 0 {
		return unknown(convID)
	}
	return nil
}

// Cursor implements bridge.Store. Right after Acquire of the leg's outbox lease it answers
// with the cursor the lease's script read (cache.go).
func (s *Store) Cursor(ctx context.Context, convID, leg string) (int64, error) {
	if cur, ok := s.takeCursor(convID, leg); ok {
		return cur, nil
	}
	cur, err := s.rdb.HGet(ctx, s.key(kCur, convID), leg).Int64()
	if errors.Is(err, goredis.Nil) {
		return -1, nil
	} else if err != nil {
		return 0, fmt.Errorf("redis store: cursor %s of %q: %w", leg, convID, err)
	}
	return cur, nil
}

// Pending implements bridge.Store. It reads the addressed and cursor hashes of every
// conversation in the pending index, and drops from the index the conversations that are gone
// and those with every leg caught up, so that the index (which Hub.Run scans every few seconds
// with several instances) holds the conversations with work rather than every one of the last
// TTL. Dropping is safe against a concurrent Append, which adds its conversation to the index
// both before and after its script: the conversations dropped are read again after the SREM,
// and added back with what they have pending; an append whose script ran after that read adds
// its conversation back itself afterwards.
func (s *Store) Pending(ctx context.Context) ([]bridge.PendingLeg, error) {
	ids, err := s.rdb.SMembers(ctx, s.pendingKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis store: pending: %w", err)
	}
	out, gone, idle, err := s.pendingOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	if len(gone) > 0 {
		if err := s.rdb.SRem(ctx, s.pendingKey(), gone...).Err(); err != nil {
			s.log.Warn().Err(err).Msg("redis store: drop gone conversations from the pending index")
		}
	}
	if len(idle) == 0 {
		return out, nil
	}
	if err := s.rdb.SRem(ctx, s.pendingKey(), idle...).Err(); err != nil {
		s.log.Warn().Err(err).Msg("redis store: drop caught-up conversations from the pending index")
		return out, nil
	}
	again := make([]string, len(idle))
	for i, id := range idle {
		again[i] = id.(string)
	}
	more, _, _, err := s.pendingOf(ctx, again)
	if err != nil { // they may have work: back into the index
		if aerr := s.rdb.SAdd(ctx, s.pendingKey(), idle...).Err(); aerr != nil {
			s.log.Warn().Err(aerr).Msg("redis store: restore the pending index")
		}
		return nil, err
	}
	back := map[string]bool{}
	var readd []any
	for _, p := range more {
		if !back[p.ConversationID] {
			back[p.ConversationID] = true
			readd = append(readd, p.ConversationID)
		}
	}
	if len(readd) > 0 {
		if err := s.rdb.SAdd(ctx, s.pendingKey(), readd...).Err(); err != nil {
			return nil, fmt.Errorf("redis store: pending: restore the index: %w", err)
		}
	}
	return append(out, more...), nil
}

// pendingOf reads the pending legs of the conversations ids, and which of them are gone or
// have no leg pending.
func (s *Store) pendingOf(ctx context.Context, ids []string) (out []bridge.PendingLeg, gone, idle []any, err error) {
	if len(ids) == 0 {
		return nil, nil, nil, nil
	}
	pipe := s.rdb.Pipeline()
	exs := make([]*goredis.IntCmd, len(ids))
	addrs := make([]*goredis.MapStringStringCmd, len(ids))
	curs := make([]*goredis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		exs[i] = pipe.Exists(ctx, s.key(kConv, id))
		addrs[i] = pipe.HGetAll(ctx, s.key(kAddr, id))
		curs[i] = pipe.HGetAll(ctx, s.key(kCur, id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, nil, fmt.Errorf("redis store: pending: %w", err)
	}
	for i, id := range ids {
		if exs[i].Val() == 0 {
			gone = append(gone, id)
			continue
		}
		cur := curs[i].Val()
		busy := false
		for leg, l := range addrs[i].Val() {
			last, err := strconv.ParseInt(l, 10, 64)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("redis store: pending: %s of %q: %w", leg, id, err)
			}
			c := int64(-1)
			if v, ok := cur[leg]; ok {
				if c, err = strconv.ParseInt(v, 10, 64); err != nil {
					return nil, nil, nil, fmt.Errorf("redis store: pending: cursor %s of %q: %w", leg, id, err)
				}
			}
			if last > c {
				out = append(out, bridge.PendingLeg{ConversationID: id, Leg: leg, Cursor: c, Last: last})
				busy = true
			}
		}
		if !busy {
			idle = append(idle, id)
		}
	}
	return out, gone, idle, nil
}

// Close implements bridge.Store: it wakes every watcher and ends the wake-up subscription. The
// client stays open (it is the caller's). Close may be called more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.fireAllLocked()
	s.mu.Unlock()
	s.stopSubscriber()
	return nil
}
