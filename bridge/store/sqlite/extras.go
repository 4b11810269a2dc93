package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
)

// This file holds what a conversation keeps besides its log: timers, named values and files.
// Each is written through the writer, which checks that the conversation exists, and goes with
// the conversation when the sweep removes it.

// SetTimer implements bridge.Store. It returns once the timer is committed.
func (s *Store) SetTimer(ctx context.Context, convID, name string, due time.Time) error {
	r := &request{kind: kindTimer, conv: convID, leg: name, drop: due.IsZero()}
	if !r.drop {
		r.seq = unixNano(due)
	}
	return s.submit(ctx, r)
}

// Bounds of the times that Unix nanoseconds hold.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// unixNano is t.UnixNano, clamped for times out of its range (a far-off "never" stays far off).
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// DueTimers implements bridge.Store. It reads the timers' index on due times, not every timer.
func (s *Store) DueTimers(ctx context.Context, now time.Time, limit int) ([]bridge.Timer, error) {
	lim := int64(limit)
	if limit <= 0 {
		lim = -1 // SQLite: no limit
	}
	rows, err := s.r[rdDue].QueryContext(ctx, unixNano(now), lim)
	if err != nil {
		return nil, s.readErr("read timers", err)
	}
	defer rows.Close()
	var out []bridge.Timer
	for rows.Next() {
		var (
			t   bridge.Timer
			due int64
		)
		if err := rows.Scan(&t.ConversationID, &t.Name, &due); err != nil {
			return nil, s.readErr("read timers", err)
		}
		t.Due = time.Unix(0, due).UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("read timers", err)
	}
	return out, nil
}

// PutValue implements bridge.Store. It returns once the value is committed.
func (s *Store) PutValue(ctx context.Context, convID, key string, value []byte) error {
	return s.submit(ctx, &request{kind: kindValue, conv: convID, leg: key, body: bytes.Clone(value), drop: value == nil})
}

// Value implements bridge.Store.
func (s *Store) Value(ctx context.Context, convID, key string) ([]byte, error) {
	var v []byte
	switch err := s.r[rdValue].QueryRowContext(ctx, convID, key).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("value %q of %q: %w", key, convID, bridge.ErrNotFound)
	case err != nil:
		return nil, s.readErr("read value", err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Values implements bridge.Store.
func (s *Store) Values(ctx context.Context, key string) (map[string][]byte, error) {
	rows, err := s.r[rdValues].QueryContext(ctx, key)
	if err != nil {
		return nil, s.readErr("read values", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var (
			id string
			v  []byte
		)
		if err := rows.Scan(&id, &v); err != nil {
			return nil, s.readErr("read values", err)
		}
		if v == nil {
			v = []byte{}
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("read values", err)
	}
	return out, nil
}

// PutBlob implements bridge.Store. It returns once the file is committed; the writer holds
// b.Data until then.
func (s *Store) PutBlob(ctx context.Context, convID, id string, b bridge.Blob) error {
	data := b.Data
	if data == nil {
		data = []byte{}
	}
	return s.submit(ctx, &request{kind: kindBlob, conv: convID, leg: id, ctype: b.ContentType, body: data})
}

// Blob implements bridge.Store.
func (s *Store) Blob(ctx context.Context, convID, id string) (bridge.Blob, error) {
	var b bridge.Blob
	switch err := s.r[rdBlob].QueryRowContext(ctx, convID, id).Scan(&b.ContentType, &b.Data); {
	case errors.Is(err, sql.ErrNoRows):
		return bridge.Blob{}, fmt.Errorf("file %q of %q: %w", id, convID, bridge.ErrNotFound)
	case err != nil:
		return bridge.Blob{}, s.readErr("read file", err)
	}
	if b.Data == nil {
		b.Data = []byte{}
	}
	return b, nil
}

// exists reports whether r's conversation exists, and sets r.err when it does not.
func (b *batchState) exists(s *Store, r *request) (bool, error) {
	_, ok, err := b.conv(s, r.conv)
	if err == nil && !ok {
		r.err = unknown(r.conv)
	}
	return ok, err
}

// applyTimer sets or removes a timer.
func (s *Store) applyTimer(b *batchState, r *request) error {
	if ok, err := b.exists(s, r); !ok {
		return err
	}
	if r.drop {
		_, err := b.exec(s, stDropTimer, r.conv, r.leg)
		return err
	}
	_, err := b.exec(s, stTimer, r.conv, r.leg, r.seq)
	return err
}

// applyValue stores or removes a value; the bridge's own (conversation "") need no conversation.
func (s *Store) applyValue(b *batchState, r *request) error {
	if r.conv != "" {
		if ok, err := b.exists(s, r); !ok {
			return err
		}
	}
	if r.drop {
		_, err := b.exec(s, stDropValue, r.conv, r.leg)
		return err
	}
	_, err := b.exec(s, stValue, r.conv, r.leg, r.body, b.now)
	return err
}

// applyBlob stores a file.
func (s *Store) applyBlob(b *batchState, r *request) error {
	if ok, err := b.exists(s, r); !ok {
		return err
	}
	_, err := b.exec(s, stBlob, r.conv, r.leg, r.ctype, r.body)
	return err
}
