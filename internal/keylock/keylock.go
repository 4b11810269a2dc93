// Package keylock holds a mutex per key — a conversation id, say — that exists only while
// someone holds or waits for it, so that a long-lived process does not keep one per key it
// has ever seen.
package keylock

import "sync"

// Map is a set of mutexes by key. The zero Map is ready to use; a Map must not be copied
// after first use.
type Map struct {
	mu sync.Mutex
	m  map[string]*entry
}

// entry is one key's mutex and how many hold or wait for it.
type entry struct {
	sync.Mutex
	refs int
}

// Lock locks key's mutex, waiting while another holds it, and returns its unlock, which must be
// called exactly once.
func (k *Map) Lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*entry{}
	}
	e := k.m[key]
	if e == nil {
		e = &entry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// Len returns how many keys have a mutex now: those held or waited for.
func (k *Map) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
