package redis

import (
	"context"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bfbridge/bfbridge/bridge"
)

// Leases (bridge.Leaser). A lease is a key of the conversation's slot, {id}:lease:<name>,
// holding its fencing token, set with NX PX; the tokens come from the hash {id}:fence
// (name -> the last token issued, HINCRBY), which lives as long as the conversation's keys. The
// fenced acknowledgement and the timer claim are scripts over the conversation's keys and these,
// so they are atomic with what they check, in a Cluster too.

var _ bridge.Leaser = (*Store)(nil)

func (s *Store) leaseKey(convID, name string) string {
	return s.prefix + tag(convID) + ":lease:" + name
}
func (s *Store) fenceKey(convID string) string { return s.prefix + tag(convID) + ":fence" }

// convTTL is the TTL of the fence hash: the conversation's (0: none; negative: a light touch,
// see luaTouch).
func (s *Store) convTTL(convID string) int64 { return s.touchTTL(convID) }

// acquireScript: KEYS[1] the lease, KEYS[2] the fence hash; ARGV[1] the lease name, ARGV[2] its
// TTL (ms), ARGV[3] the fence hash's TTL (ms, 0: none, negative: only when it has none). Reply the new token, or 0 when held.
var acquireScript = goredis.NewScript(luaAcquire + `
return acquire()
`)

const luaAcquire = `
local function acquire()
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  local tok = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  redis.call('SET', KEYS[1], tok, 'PX', ARGV[2])
  local ft = tonumber(ARGV[3])
  if ft > 0 then redis.call('PEXPIRE', KEYS[2], ft) elseif ft < 0 then redis.call('PEXPIRE', KEYS[2], -ft, 'NX') end
  return tok
end
`

// acquireOutboxScript is acquireScript for an outbox lease, KEYS[3] the conversation's cursor
// hash and ARGV[4] the leg: it replies {token, cursor} (token 0 when held; cursor -1 when the
// leg has none), so that the outbox's read of the cursor right after needs no round trip.
var acquireOutboxScript = goredis.NewScript(luaAcquire + `
local tok = acquire()
if tok == 0 then return {0, -1} end
return {tok, tonumber(redis.call('HGET', KEYS[3], ARGV[4]) or '-1')}
`)

// renewScript: KEYS[1] the lease; ARGV[1] the token, ARGV[2] the TTL (ms). Reply 1 when renewed.
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// ackFencedScript: the conversation's keys, then KEYS[9] the fence hash; ARGV[1] the TTL,
// ARGV[2] the leg, ARGV[3] the seq, ARGV[4] the lease name, ARGV[5] the token. Reply 1 when
// acknowledged, 0 when fenced, -1 for an unknown conversation.
var ackFencedScript = goredis.NewScript(luaTouch + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[9], ARGV[4]) ~= ARGV[5] then return 0 end
local cur = redis.call('HGET', KEYS[5], ARGV[2])
if not cur or tonumber(ARGV[3]) > tonumber(cur) then redis.call('HSET', KEYS[5], ARGV[2], ARGV[3]) end
touch(5)
return 1
`)

// claimTimerScript: KEYS[1] the lease, KEYS[2] the fence hash, KEYS[3] the conversation's
// timers hash; ARGV[1] the lease name, ARGV[2] its TTL, ARGV[3] the fence hash's TTL, ARGV[4]
// the timer's name, ARGV[5] its due time (unix ms). Reply the token, 0 when the lease is held,
// -1 when the timer is no longer due at that time.
var claimTimerScript = goredis.NewScript(luaAcquire + `
local d = redis.call('HGET', KEYS[3], ARGV[4])
if not d or tonumber(d) ~= tonumber(ARGV[5]) then return -1 end
return acquire()
`)

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// Acquire implements bridge.Leaser. An outbox lease also reads the leg's cursor, for Cursor
// (the cursor cache, cache.go).
func (s *Store) Acquire(ctx context.Context, convID, name string, ttl time.Duration) (int64, bool, error) {
	keys := []string{s.leaseKey(convID, name), s.fenceKey(convID)}
	leg, outbox := strings.CutPrefix(name, bridge.OutboxLease(""))
	if !outbox {
		tok, err := acquireScript.Run(ctx, s.rdb, keys, name, ms(ttl), s.convTTL(convID)).Int64()
		if err != nil {
			return 0, false, fmt.Errorf("redis store: lease %s of %q: %w", name, convID, err)
		}
		return tok, tok > 0, nil
	}
	keys = append(keys, s.key(kCur, convID))
	res, err := acquireOutboxScript.Run(ctx, s.rdb, keys, name, ms(ttl), s.convTTL(convID), leg).Int64Slice()
	if err != nil {
		return 0, false, fmt.Errorf("redis store: lease %s of %q: %w", name, convID, err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("redis store: lease %s of %q: reply %v", name, convID, res)
	}
	if res[0] > 0 {
		s.learnCursor(convID, leg, res[0], res[1], ttl)
	}
	return res[0], res[0] > 0, nil
}

// Renew implements bridge.Leaser.
func (s *Store) Renew(ctx context.Context, convID, name string, token int64, ttl time.Duration) (bool, error) {
	n, err := renewScript.Run(ctx, s.rdb, []string{s.leaseKey(convID, name)}, token, ms(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("redis store: renew lease %s of %q: %w", name, convID, err)
	}
	return n == 1, nil
}

// Release implements bridge.Leaser.
func (s *Store) Release(ctx context.Context, convID, name string, token int64) error {
	if leg, ok := strings.CutPrefix(name, bridge.OutboxLease("")); ok {
		s.dropCursor(convID, leg)
	}
	if err := releaseScript.Run(ctx, s.rdb, []string{s.leaseKey(convID, name)}, token).Err(); err != nil {
		return fmt.Errorf("redis store: release lease %s of %q: %w", name, convID, err)
	}
	return nil
}

// AckFenced implements bridge.Leaser.
func (s *Store) AckFenced(ctx context.Context, convID, leg string, seq, token int64) error {
	keys := append(s.convKeys(convID), s.fenceKey(convID))
	r, err := ackFencedScript.Run(ctx, s.rdb, keys, s.touchTTL(convID), leg, seq, bridge.OutboxLease(leg), token).Int()
	switch {
	case err != nil:
		return fmt.Errorf("redis store: ack %s of %q: %w", leg, convID, err)
	case r < 0:
		return unknown(convID)
	case r == 0:
		s.dropCursor(convID, leg)
		return fmt.Errorf("ack %s of %q with token %d: %w", leg, convID, token, bridge.ErrFenced)
	}
	s.ackedCursor(convID, leg, token, seq)
	return nil
}

// ClaimTimer implements bridge.Leaser.
func (s *Store) ClaimTimer(ctx context.Context, t bridge.Timer, ttl time.Duration) (int64, bool, error) {
	name := bridge.TimerLease(t.Name)
	keys := []string{s.leaseKey(t.ConversationID, name), s.fenceKey(t.ConversationID), s.key(kTimers, t.ConversationID)}
	tok, err := claimTimerScript.Run(ctx, s.rdb, keys, name, ms(ttl), s.convTTL(t.ConversationID), t.Name, t.Due.UnixMilli()).Int64()
	if err != nil {
		return 0, false, fmt.Errorf("redis store: claim timer %s of %q: %w", t.Name, t.ConversationID, err)
	}
	return tok, tok > 0, nil
}

var _ bridge.SharedValues = (*Store)(nil)

// InitValue implements bridge.SharedValues: HSETNX on the bridge's own values, then a read, in
// one transaction.
func (s *Store) InitValue(ctx context.Context, key string, value []byte) ([]byte, error) {
	if value == nil {
		value = []byte{}
	}
	var get *goredis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSetNX(ctx, s.valuesKey(), key, value)
		get = p.HGet(ctx, s.valuesKey(), key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis store: init value %q: %w", key, err)
	}
	return get.Bytes()
}
