package load

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets: exact below 64 ns, then 64 buckets per
// power of two (a relative error under 1.6%). It is safe for concurrent use without locks.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

const (
	histSub     = 64 // buckets per power of two
	histBuckets = histSub + (64-7+1)*histSub
)

func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - 7 // v>>shift is in [64, 128)
	return histSub + shift*histSub + int(v>>uint(shift)) - histSub
}

// bucketValue returns the middle of bucket i.
func bucketValue(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := (i - histSub) / histSub
	m := uint64((i-histSub)%histSub + histSub)
	return m<<uint(shift) + (uint64(1)<<uint(shift))/2
}

// record adds one duration; negative ones count as zero.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// count returns the number of durations recorded.
func (h *histogram) count() uint64 { return h.n.Load() }

// maximum returns the largest duration recorded.
func (h *histogram) maximum() time.Duration { return time.Duration(h.max.Load()) }

// quantile returns the duration below which a fraction q of the recorded ones fall (0 when
// nothing was recorded).
func (h *histogram) quantile(q float64) time.Duration {
	total := h.n.Load()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	if rank >= total {
		return h.maximum()
	}
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(bucketValue(i)), h.maximum())
		}
	}
	return h.maximum()
}
