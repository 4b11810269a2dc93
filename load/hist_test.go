package load

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistogramBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 123456789, 1 << 40, 1<<63 - 1} {
		i := bucketOf(v)
		require.Less(t, i, histBuckets, "value %d", v)
		mid := bucketValue(i)
		if v < histSub {
			require.Equal(t, v, mid)
			continue
		}
		err := float64(mid) - float64(v)
		require.LessOrEqual(t, abs(err)/float64(v), 1.0/64, "value %d in bucket %d (middle %d)", v, i, mid)
	}
	// Buckets are in order of value.
	prev := uint64(0)
	for i := 1; i < histBuckets; i++ {
		require.Greater(t, bucketValue(i), prev)
		prev = bucketValue(i)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	require.Zero(t, h.quantile(0.5))
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 100000)
	var wg sync.WaitGroup
	for w := range 4 { // concurrent recording, as the readers do
		for i := w; i < len(vals); i += 4 {
			vals[i] = time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		}
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(vals); i += 4 {
				h.record(vals[i])
			}
		}()
	}
	wg.Wait()
	slices.Sort(vals)
	require.EqualValues(t, len(vals), h.count())
	require.Equal(t, vals[len(vals)-1], h.maximum())
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.quantile(q)
		require.InEpsilon(t, float64(exact), float64(got), 0.02, "q=%v", q)
	}
	require.Equal(t, h.maximum(), h.quantile(1))
	h.record(-time.Second)
	require.Equal(t, time.Duration(0), h.quantile(0))
}
