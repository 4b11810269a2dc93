//go:build race

package testutil

// RaceEnabled reports whether the race detector is on. It drops sync.Pool items at random, so a
// test that counts allocations (testing.AllocsPerRun) over code using a pool allows for the
// pool's misses then.
const RaceEnabled = true
