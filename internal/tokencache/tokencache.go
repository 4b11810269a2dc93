// Package tokencache keeps the bearer token a client gets from a token endpoint (client
// credentials): fetched when first needed, shared by every caller, renewed RefreshBefore its
// expiry (half-way through a shorter life), as botbuilder's AppCredentials renew theirs, and
// dropped when the API it is for refuses it.
package tokencache

import (
	"context"
	"sync"
	"time"
)

// RefreshBefore is how long before its expiry a token is renewed.
const RefreshBefore = 5 * time.Minute

// Fetch gets a new token and its life from the token endpoint.
type Fetch func(ctx context.Context) (token string, life time.Duration, err error)

// Cache is one cached token. Concurrent callers wait for one fetch (the lock is held while
// fetching, and ctx bounds the wait).
type Cache struct {
	fetch Fetch
	now   func() time.Time

	mu      sync.Mutex
	tok     string
	renewAt time.Time
}

// New returns an empty cache that gets its tokens with fetch.
func New(fetch Fetch) *Cache { return &Cache{fetch: fetch, now: time.Now} }

// Token returns a valid token, fetching one when none is cached or the cached one is due for
// renewal. It returns the fetch's error as it is.
func (c *Cache) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != "" && c.now().Before(c.renewAt) {
		return c.tok, nil
	}
	tok, life, err := c.fetch(ctx)
	if err != nil {
		return "", err
	}
	renew := life - RefreshBefore
	if life < 2*RefreshBefore {
		renew = life / 2
	}
	c.tok, c.renewAt = tok, c.now().Add(renew)
	return tok, nil
}

// Invalidate drops the cached token when it is tok (the API refused it), so that the next
// Token fetches another; a token renewed meanwhile is kept. tok "" drops whatever is cached.
func (c *Cache) Invalidate(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok == "" || c.tok == tok {
		c.tok = ""
	}
}
