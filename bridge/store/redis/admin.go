package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bfbridge/bfbridge/bridge"
)

// The conversations index, <prefix>convs, is a sorted set of every conversation id at score 0,
// so that Conversations pages through it in id order (ZRANGE BYLEX). Like the other global
// entries it lives in a slot of its own: CreateConversation adds the id before and after its
// script, PutConversation after its compare-and-swap, EraseConversation removes it last, and
// readers drop the ids whose conversation is gone (expired). A reader racing a creation may
// drop its id; its next put adds it back. The first Conversations call of a Store adds the
// conversations that predate the index (created by an older bridge): a SCAN for their conv
// keys, on every primary of a Cluster.

func (s *Store) convsKey() string { return s.prefix + "convs" }

// indexConv adds id to the conversations index.
func (s *Store) indexConv(ctx context.Context, id string) error {
	if err := s.rdb.ZAdd(ctx, s.convsKey(), goredis.Z{Member: id}).Err(); err != nil {
		return fmt.Errorf("redis store: index conversation %q: %w", id, err)
	}
	return nil
}

// Conversations implements bridge.Store.
func (s *Store) Conversations(ctx context.Context, after string, limit int) ([]*bridge.Conversation, error) {
	if err := s.backfillOnce(ctx); err != nil {
		return nil, err
	}
	var out []*bridge.Conversation
	for limit <= 0 || len(out) < limit {
		want := 100
		if limit > 0 {
			want = limit - len(out)
		}
		page, last, more, err := s.conversationsPage(ctx, after, want)
		if err != nil {
			return nil, err
		}
		out, after = append(out, page...), last
		if !more {
			break
		}
	}
	return out, nil
}

// conversationsPage reads up to n ids of the index after after and their conversations; more
// says whether the index may hold more.
func (s *Store) conversationsPage(ctx context.Context, after string, n int) (page []*bridge.Conversation, last string, more bool, err error) {
	lo := "-"
	if after != "" {
		lo = "(" + after
	}
	ids, err := s.rdb.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: s.convsKey(), Start: lo, Stop: "+", ByLex: true, Count: int64(n)}).Result()
	if err != nil {
		return nil, "", false, fmt.Errorf("redis store: list conversations: %w", err)
	}
	if len(ids) == 0 {
		return nil, after, false, nil
	}
	pipe := s.rdb.Pipeline()
	js := make([]*goredis.StringCmd, len(ids))
	for i, id := range ids {
		js[i] = pipe.HGet(ctx, s.key(kConv, id), "j")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, "", false, fmt.Errorf("redis store: list conversations: %w", err)
	}
	var gone []any
	for i, id := range ids {
		j, err := js[i].Result()
		if errors.Is(err, goredis.Nil) {
			gone = append(gone, id)
			continue
		}
		c, err := decodeConv(j)
		if err != nil {
			return nil, "", false, err
		}
		page = append(page, c)
	}
	if len(gone) > 0 {
		if err := s.rdb.ZRem(ctx, s.convsKey(), gone...).Err(); err != nil {
			s.log.Warn().Err(err).Msg("redis store: drop gone conversations from the index")
		}
	}
	return page, ids[len(ids)-1], len(ids) == n, nil
}

// EraseConversation implements bridge.Store. It reads the conversation's legs and the names of
// its timers, values and leases, removes its global entries (legs it still holds, timers,
// value indexes, pending), then deletes every key of its slot in one DEL (one slot: fine on a
// Cluster), and last its id from the conversations index. An erase that fails before the DEL
// leaves the conversation whole, to be erased again; the global entries left by one that fails
// after it are dropped by the readers that meet them. Watchers on every instance are woken.
func (s *Store) EraseConversation(ctx context.Context, id string) error {
	c, err := s.Conversation(ctx, id)
	if err != nil {
		return err
	}
	pipe := s.rdb.Pipeline()
	timers := pipe.HKeys(ctx, s.key(kTimers, id))
	vals := pipe.HKeys(ctx, s.key(kVals, id))
	leases := pipe.HKeys(ctx, s.fenceKey(id))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis store: erase %q: %w", id, err)
	}
	if err := s.eraseGlobal(ctx, c, timers.Val(), vals.Val()); err != nil {
		return err
	}
	keys := append(s.convKeys(id), s.fenceKey(id))
	for _, name := range leases.Val() {
		keys = append(keys, s.leaseKey(id, name))
	}
	if err := s.rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("redis store: erase %q: %w", id, err)
	}
	if err := s.rdb.ZRem(ctx, s.convsKey(), id).Err(); err != nil {
		s.log.Warn().Err(err).Str("conv_id", id).Msg("redis store: drop an erased conversation from the index")
	}
	s.fire(id, math.MaxInt64)
	if err := s.rdb.Publish(ctx, s.wakeChannel(), strconv.FormatInt(math.MaxInt64, 10)+":"+id).Err(); err != nil {
		s.log.Warn().Err(err).Str("conv_id", id).Msg("redis store: wake the watchers of an erased conversation")
	}
	return nil
}

// eraseGlobal removes the entries of conversation c outside its slot, each in its own step.
func (s *Store) eraseGlobal(ctx context.Context, c *bridge.Conversation, timers, vals []string) error {
	for _, l := range c.Legs() {
		if err := releaseScript.Run(ctx, s.rdb, []string{s.legKey(l.Key())}, c.ID).Err(); err != nil {
			return fmt.Errorf("redis store: erase %q: leg %s: %w", c.ID, l.Key(), err)
		}
	}
	for _, name := range timers {
		if err := s.rdb.ZRem(ctx, s.timersKey(), timerMember(c.ID, name)).Err(); err != nil {
			return fmt.Errorf("redis store: erase %q: timers: %w", c.ID, err)
		}
	}
	for _, key := range vals {
		if err := s.rdb.SRem(ctx, s.vidxKey(key), c.ID).Err(); err != nil {
			return fmt.Errorf("redis store: erase %q: values: %w", c.ID, err)
		}
	}
	if err := s.rdb.SRem(ctx, s.pendingKey(), c.ID).Err(); err != nil {
		return fmt.Errorf("redis store: erase %q: pending: %w", c.ID, err)
	}
	return nil
}

// backfillOnce runs backfill until it has succeeded once.
func (s *Store) backfillOnce(ctx context.Context) error {
	s.backfillMu.Lock()
	defer s.backfillMu.Unlock()
	if s.backfilled {
		return nil
	}
	if err := s.backfill(ctx); err != nil {
		return fmt.Errorf("redis store: index the conversations: %w", err)
	}
	s.backfilled = true
	return nil
}

// backfill adds to the conversations index every conversation whose conv key exists.
func (s *Store) backfill(ctx context.Context) error {
	scan := func(ctx context.Context, c *goredis.Client) error {
		it := c.Scan(ctx, 0, globEscape(s.prefix)+"{*}:conv", 1000).Iterator()
		var batch []goredis.Z
		for it.Next(ctx) {
			if id, ok := s.idOfConvKey(it.Val()); ok {
				batch = append(batch, goredis.Z{Member: id})
			}
			if len(batch) == 1000 {
				if err := s.rdb.ZAdd(ctx, s.convsKey(), batch...).Err(); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := it.Err(); err != nil || len(batch) == 0 {
			return err
		}
		return s.rdb.ZAdd(ctx, s.convsKey(), batch...).Err()
	}
	switch c := s.rdb.(type) {
	case *goredis.ClusterClient:
		return c.ForEachMaster(ctx, scan)
	case *goredis.Client:
		return scan(ctx, c)
	}
	return nil // a Ring: nothing to scan with
}

// idOfConvKey returns the conversation id of a conv key (the inverse of key(kConv, id)).
func (s *Store) idOfConvKey(k string) (string, bool) {
	t, ok := strings.CutPrefix(k, s.prefix+"{")
	if !ok {
		return "", false
	}
	t, ok = strings.CutSuffix(t, "}:conv")
	if !ok || strings.ContainsAny(t, "{}") {
		return "", false
	}
	if h, ok := strings.CutPrefix(t, "~"); ok {
		b, err := hex.DecodeString(h)
		return string(b), err == nil
	}
	return t, true
}

// globEscape escapes the characters SCAN's MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
