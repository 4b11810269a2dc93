package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bfbridge/bfbridge/bridge"
)

// timerMember is a timer's member in the timers index.
func timerMember(convID, name string) string { return convID + "\x00" + name }

// SetTimer implements bridge.Store. Due times are kept to the millisecond.
func (s *Store) SetTimer(ctx context.Context, convID, name string, due time.Time) error {
	set, ms := "0", int64(0)
	if !due.IsZero() {
		set, ms = "1", due.UnixMilli()
	}
	r, err := hashScript.Run(ctx, s.rdb, s.convKeys(convID), s.touchTTL(convID), kTimers+1, name, set, ms).Int()
	if err != nil {
		return fmt.Errorf("redis store: set timer %s of %q: %w", name, convID, err)
	}
	if r < 0 {
		return unknown(convID)
	}
	if due.IsZero() {
		err = s.rdb.ZRem(ctx, s.timersKey(), timerMember(convID, name)).Err()
	} else {
		err = s.rdb.ZAdd(ctx, s.timersKey(), goredis.Z{Score: float64(ms), Member: timerMember(convID, name)}).Err()
	}
	if err != nil {
		return fmt.Errorf("redis store: index timer %s of %q: %w", name, convID, err)
	}
	return nil
}

// DueTimers implements bridge.Store: a range of the timers index, each checked against its
// conversation's hash. Index entries that no longer match are dropped (compare-and-delete).
func (s *Store) DueTimers(ctx context.Context, now time.Time, limit int) ([]bridge.Timer, error) {
	rng := &goredis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10)}
	if limit > 0 {
		rng.Count = int64(limit)
	}
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.timersKey(), rng).Result()
	if err != nil {
		return nil, fmt.Errorf("redis store: due timers: %w", err)
	}
	if len(zs) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	dues := make([]*goredis.StringCmd, len(zs))
	for i, z := range zs {
		conv, name, _ := strings.Cut(z.Member.(string), "\x00")
		dues[i] = pipe.HGet(ctx, s.key(kTimers, conv), name)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis store: due timers: %w", err)
	}
	out := make([]bridge.Timer, 0, len(zs))
	for i, z := range zs {
		member := z.Member.(string)
		conv, name, _ := strings.Cut(member, "\x00")
		ms := int64(z.Score)
		if v, err := dues[i].Int64(); err == nil && v == ms {
			out = append(out, bridge.Timer{ConversationID: conv, Name: name, Due: time.UnixMilli(ms)})
			continue
		}
		// stale: the conversation is gone, or the timer was removed or moved meanwhile
		if err := zremIfScript.Run(ctx, s.rdb, []string{s.timersKey()}, member, ms).Err(); err != nil {
			s.log.Warn().Err(err).Str("conversation", conv).Str("timer", name).Msg("redis store: drop a stale timer")
		}
	}
	return out, nil
}

// PutValue implements bridge.Store.
func (s *Store) PutValue(ctx context.Context, convID, key string, value []byte) error {
	if convID == "" {
		var err error
		if value == nil {
			err = s.rdb.HDel(ctx, s.valuesKey(), key).Err()
		} else {
			err = s.rdb.HSet(ctx, s.valuesKey(), key, value).Err()
		}
		if err != nil {
			return fmt.Errorf("redis store: put value %q: %w", key, err)
		}
		return nil
	}
	set := "0"
	if value != nil {
		set = "1"
		// the index first, so that it is a superset of the conversations holding a value
		if err := s.rdb.SAdd(ctx, s.vidxKey(key), convID).Err(); err != nil {
			return fmt.Errorf("redis store: index value %q of %q: %w", key, convID, err)
		}
	}
	r, err := hashScript.Run(ctx, s.rdb, s.convKeys(convID), s.touchTTL(convID), kVals+1, key, set, value).Int()
	if err != nil {
		return fmt.Errorf("redis store: put value %q of %q: %w", key, convID, err)
	}
	if r < 0 {
		return unknown(convID)
	}
	return nil
}

// Value implements bridge.Store.
func (s *Store) Value(ctx context.Context, convID, key string) ([]byte, error) {
	k := s.valuesKey()
	if convID != "" {
		k = s.key(kVals, convID)
	}
	v, err := s.rdb.HGet(ctx, k, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("value %q of %q: %w", key, convID, bridge.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("redis store: value %q of %q: %w", key, convID, err)
	}
	return v, nil
}

// Values implements bridge.Store: the conversations of the value index, each read from its
// hash; the index drops the conversations that are gone.
func (s *Store) Values(ctx context.Context, key string) (map[string][]byte, error) {
	ids, err := s.rdb.SMembers(ctx, s.vidxKey(key)).Result()
	if err != nil {
		return nil, fmt.Errorf("redis store: values %q: %w", key, err)
	}
	pipe := s.rdb.Pipeline()
	own := pipe.HGet(ctx, s.valuesKey(), key)
	vals := make([]*goredis.StringCmd, len(ids))
	exs := make([]*goredis.IntCmd, len(ids))
	for i, id := range ids {
		vals[i] = pipe.HGet(ctx, s.key(kVals, id), key)
		exs[i] = pipe.Exists(ctx, s.key(kConv, id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis store: values %q: %w", key, err)
	}
	out := map[string][]byte{}
	if v, err := own.Bytes(); err == nil {
		out[""] = v
	}
	var gone []any
	for i, id := range ids {
		if v, err := vals[i].Bytes(); err == nil {
			out[id] = v
		} else if exs[i].Val() == 0 {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		if err := s.rdb.SRem(ctx, s.vidxKey(key), gone...).Err(); err != nil {
			s.log.Warn().Err(err).Str("key", key).Msg("redis store: drop gone conversations from a value index")
		}
	}
	return out, nil
}

// PutBlob implements bridge.Store.
func (s *Store) PutBlob(ctx context.Context, convID, id string, b bridge.Blob) error {
	data := b.Data
	if data == nil {
		data = []byte{}
	}
	r, err := hashScript.Run(ctx, s.rdb, s.convKeys(convID), s.touchTTL(convID), kFiles+1, "d:"+id, "1", data, "t:"+id, b.ContentType).Int()
	if err != nil {
		return fmt.Errorf("redis store: put file %q of %q: %w", id, convID, err)
	}
	if r < 0 {
		return unknown(convID)
	}
	return nil
}

// Blob implements bridge.Store.
func (s *Store) Blob(ctx context.Context, convID, id string) (bridge.Blob, error) {
	vs, err := s.rdb.HMGet(ctx, s.key(kFiles, convID), "d:"+id, "t:"+id).Result()
	if err != nil {
		return bridge.Blob{}, fmt.Errorf("redis store: file %q of %q: %w", id, convID, err)
	}
	data, ok := vs[0].(string)
	if !ok {
		return bridge.Blob{}, fmt.Errorf("file %q of %q: %w", id, convID, bridge.ErrNotFound)
	}
	ct, _ := vs[1].(string)
	return bridge.Blob{ContentType: ct, Data: []byte(data)}, nil
}
