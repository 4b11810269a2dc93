package sqlite

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
)

// BenchmarkAppend measures durable appends per second from many goroutines (32 per CPU), each
// appending ~300-byte activities to its own conversation of 1,000 (the realistic case, where
// each transaction touches many conversations) or all to one (the best case for locality), at
// two BatchWait settings; and one appender alone, which pays a whole fsync'ed transaction for
// each append. "addressed" adds the cost of marking each record addressed to a leg (the outbox).
//
//	go test -run '^$' -bench BenchmarkAppend -benchtime 5s ./bridge/store/sqlite/
func BenchmarkAppend(b *testing.B) {
	text := fmt.Sprintf("%0250d", 0) // with type, id and role: about 300 bytes of JSON
	for _, bc := range []struct {
		name     string
		parallel int
		wait     time.Duration
		convs    int
		to       []string // the legs each record is addressed to
	}{
		{"serial", 0, 0, 1000, nil},
		{"parallel/wait=0", 32, 0, 1000, nil},
		{"parallel/wait=0/addressed", 32, 0, 1000, []string{"botframework/bot"}},
		{"parallel/wait=200us", 32, 200 * time.Microsecond, 1000, nil},
		{"parallel/one-conversation", 32, 0, 1, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			s := open(b, Options{BatchWait: bc.wait})
			convs := bc.convs
			for i := range convs {
				if _, _, err := s.CreateConversation(ctx, conv(fmt.Sprint("b", i))); err != nil {
					b.Fatal(err)
				}
			}
			before := s.Stats()
			var next atomic.Int64
			b.ResetTimer()
			if bc.parallel == 0 {
				for i := range b.N {
					if _, _, err := add(s, fmt.Sprint("b", i%convs), bridge.RoleBot, msg(text), "", bc.to...); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism(bc.parallel)
				b.RunParallel(func(pb *testing.PB) {
					id := fmt.Sprint("b", int(next.Add(1))%convs)
					for pb.Next() {
						if _, _, err := add(s, id, bridge.RoleBot, msg(text), "", bc.to...); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			if txs := st.Transactions - before.Transactions; txs > 0 {
				b.ReportMetric(float64(st.Writes-before.Writes)/float64(txs), "appends/tx")
			}
		})
	}
}

// BenchmarkAppendLatency measures what a caller waits for one durable append at a steady
// 2,000 appends/s (a bridge at 1,000 sends/s: the customer's activity and the reply), each
// addressed to a leg and followed by that leg's Ack as the outbox does, over 500 conversations.
// It reports the latency percentiles and the time spent in checkpoints, to find where the
// p99 of the durable store goes. It asserts nothing about speed.
//
//	go test -run '^$' -bench BenchmarkAppendLatency -benchtime 10000x ./bridge/store/sqlite/
func BenchmarkAppendLatency(b *testing.B) {
	const rate, convs = 2000, 500
	ctx := context.Background()
	s := open(b, Options{})
	for i := range convs {
		if _, _, err := s.CreateConversation(ctx, conv(fmt.Sprint("l", i))); err != nil {
			b.Fatal(err)
		}
	}
	text := fmt.Sprintf("%0100d", 0)
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("l", i%convs)
			start := time.Now()
			seq, _, err := add(s, id, bridge.RoleBot, msg(text), "", "directline/c")
			lat[i] = time.Since(start)
			if err != nil {
				b.Error(err)
				return
			}
			if err := s.Ack(ctx, id, "directline/c", seq); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
