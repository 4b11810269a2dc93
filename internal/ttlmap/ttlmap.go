// Package ttlmap holds values in memory for a time to live, within a total size budget: the
// uploads a channel serves back for a day, say.
package ttlmap

import (
	"sync"
	"time"
)

// Options configure a Map.
type Options[V any] struct {
	// TTL is how long a value is served after Put.
	TTL time.Duration
	// MaxSize bounds the total Size of the values held, expired ones included until swept.
	MaxSize int64
	// Size is a value's share of MaxSize, e.g. its length in bytes.
	Size func(V) int64
	// SweepEvery spaces the sweeps of expired values, which Put does. Zero: every Put.
	SweepEvery time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Map is a map of string keys to values that expire. It is safe for concurrent use.
type Map[V any] struct {
	o Options[V]

	mu    sync.Mutex
	items map[string]item[V]
	total int64
	swept time.Time
}

type item[V any] struct {
	v       V
	size    int64
	created time.Time
}

// New returns an empty Map.
func New[V any](o Options[V]) *Map[V] {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Map[V]{o: o, items: map[string]item[V]{}}
}

// Put stores v under key, sweeping expired values first when a sweep is due. It returns false,
// storing nothing, when v would take the total over MaxSize.
func (m *Map[V]) Put(key string, v V) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.o.Now()
	if now.Sub(m.swept) >= m.o.SweepEvery {
		m.sweep(now)
	}
	size, total := m.o.Size(v), m.total
	if old, ok := m.items[key]; ok {
		total -= old.size // a value replaced frees its room
	}
	if total+size > m.o.MaxSize {
		return false
	}
	m.items[key] = item[V]{v: v, size: size, created: now}
	m.total = total + size
	return true
}

// Get returns the value under key, unless it is missing or has expired.
func (m *Map[V]) Get(key string) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[key]
	if !ok || m.o.Now().Sub(it.created) > m.o.TTL {
		var zero V
		return zero, false
	}
	return it.v, true
}

// sweep drops the expired values.
func (m *Map[V]) sweep(now time.Time) {
	for k, it := range m.items {
		if now.Sub(it.created) > m.o.TTL {
			m.total -= it.size
			delete(m.items, k)
		}
	}
	m.swept = now
}
