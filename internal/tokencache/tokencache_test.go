package tokencache

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func counter(life time.Duration) (Fetch, *int) {
	n := 0
	return func(context.Context) (string, time.Duration, error) {
		n++
		return "t" + strconv.Itoa(n), life, nil
	}, &n
}

func TestRenewedBeforeExpiry(t *testing.T) {
	ctx := context.Background()
	fetch, n := counter(time.Hour)
	c, clk := New(fetch), &clock{t: time.Unix(1e9, 0)}
	c.now = clk.now
	tok, err := c.Token(ctx)
	require.NoError(t, err)
	require.Equal(t, "t1", tok)
	clk.add(time.Hour - RefreshBefore - time.Second)
	tok, _ = c.Token(ctx)
	require.Equal(t, "t1", tok, "cached until RefreshBefore its expiry")
	clk.add(2 * time.Second)
	tok, _ = c.Token(ctx)
	require.Equal(t, "t2", tok)
	require.Equal(t, 2, *n)
}

func TestShortLifeRenewedHalfWay(t *testing.T) {
	fetch, _ := counter(4 * time.Minute)
	c, clk := New(fetch), &clock{t: time.Unix(1e9, 0)}
	c.now = clk.now
	tok, _ := c.Token(context.Background())
	clk.add(2*time.Minute - time.Second)
	again, _ := c.Token(context.Background())
	require.Equal(t, tok, again)
	clk.add(2 * time.Second)
	again, _ = c.Token(context.Background())
	require.NotEqual(t, tok, again)
}

func TestInvalidate(t *testing.T) {
	ctx := context.Background()
	fetch, _ := counter(time.Hour)
	c := New(fetch)
	t1, _ := c.Token(ctx)
	c.Invalidate("someone else's")
	same, _ := c.Token(ctx)
	require.Equal(t, t1, same, "a token already replaced is not dropped again")
	c.Invalidate(t1)
	t2, _ := c.Token(ctx)
	require.NotEqual(t, t1, t2)
	c.Invalidate("")
	t3, _ := c.Token(ctx)
	require.NotEqual(t, t2, t3)
}

func TestFetchErrorNotCached(t *testing.T) {
	fail := true
	c := New(func(context.Context) (string, time.Duration, error) {
		if fail {
			return "", 0, errors.New("refused")
		}
		return "ok", time.Hour, nil
	})
	_, err := c.Token(context.Background())
	require.EqualError(t, err, "refused")
	fail = false
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, "ok", tok)
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	var mu sync.Mutex
	n := 0
	c := New(func(context.Context) (string, time.Duration, error) {
		mu.Lock()
		n++
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		return "shared", time.Hour, nil
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); tok, _ := c.Token(context.Background()); require.Equal(t, "shared", tok) }()
	}
	wg.Wait()
	require.Equal(t, 1, n)
}
