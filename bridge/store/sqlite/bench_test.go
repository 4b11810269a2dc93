package sqlite

import (
	"context"
	"fmt"
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
