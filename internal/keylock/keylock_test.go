package keylock

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExclusivePerKey(t *testing.T) {
	var k Map
	var wg sync.WaitGroup
	counts := map[string]*int{"a": new(int), "b": new(int), "c": new(int)} // read only: each key's counter is its own
	for _, key := range []string{"a", "b", "c"} {
		for range 50 {
			wg.Go(func() {
				unlock := k.Lock(key)
				defer unlock()
				n := *counts[key] // a data race here, under -race, would mean two holders
				time.Sleep(time.Microsecond)
				*counts[key] = n + 1
			})
		}
	}
	wg.Wait()
	for key, n := range counts {
		require.Equal(t, 50, *n, key)
	}
	require.Zero(t, k.Len(), "unused keys are forgotten")
}

func TestKeysDoNotBlockEachOther(t *testing.T) {
	var k Map
	unlockA := k.Lock("a")
	done := make(chan struct{})
	go func() {
		k.Lock("b")()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("b waited for a")
	}
	require.Equal(t, 1, k.Len())
	unlockA()
	require.Zero(t, k.Len())
}

func TestWaiterKeepsTheKey(t *testing.T) {
	var k Map
	unlock := k.Lock("a")
	got := make(chan func())
	go func() { got <- k.Lock("a") }()
	require.Eventually(t, func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.m["a"] != nil && k.m["a"].refs == 2
	}, 5*time.Second, time.Millisecond)
	unlock()
	second := <-got
	require.Equal(t, 1, k.Len(), "the waiter holds it now")
	second()
	require.Zero(t, k.Len())
}
