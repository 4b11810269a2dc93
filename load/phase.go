package load

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// sampler reads a server process's CPU time and resident memory; nil when there is no process
// to watch (a server given by URL).
type sampler func() (cpu time.Duration, rss int64, err error)

// counters is a snapshot of the client's counters and the CPU clocks, at a point of a phase.
type counters struct {
	at                          time.Time
	acks, replies, texts, polls int64
	serverCPU, genCPU           time.Duration
}

func (cl *client) snapshot(server sampler) counters {
	s := counters{at: time.Now(), acks: cl.acks.Load(), replies: cl.replies.Load(), texts: cl.texts.Load(), polls: cl.polls.Load(), genCPU: selfCPU()}
	if server != nil {
		s.serverCPU, _, _ = server()
	}
	return s
}

// job is one open-loop send.
type job struct {
	c  *conv
	n  int64
	at time.Time
}

// runPhase runs one phase — rate 0 is the closed loop — and returns its row.
func (cl *client) runPhase(ctx context.Context, spec Spec, phase string, rate float64, server sampler, progress io.Writer) Row {
	o := cl.opts
	for _, c := range cl.convs {
		c.startPhase()
	}
	cl.resetHistograms()
	start := time.Now().Add(20 * time.Millisecond)
	from, end := start.Add(o.Warmup), start.Add(o.Duration)
	cl.measureFrom.Store(from.UnixNano())
	cl.measureTo.Store(end.UnixNano())
	// Sends stop at end; anything still queued when the drain is over is counted unsent.
	sendCtx, cancelSends := context.WithDeadline(ctx, end.Add(o.Drain))
	defer cancelSends()

	label := fmt.Sprintf("%s %s", spec, phase)
	if rate > 0 {
		label += fmt.Sprintf(" %.0f/s", rate)
	}
	var snapFrom, snapTo counters
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() {
		defer close(progressDone)
		cl.progress(label, start, from, end, server, progress, stopProgress, &snapFrom, &snapTo)
	}()

	var senders sync.WaitGroup
	var timeouts atomic.Int64
	if rate > 0 {
		cl.openLoop(sendCtx, rate, start, end, &senders)
	} else {
		cl.closedLoop(sendCtx, end, &senders, &timeouts)
	}
	senders.Wait()
	if n := timeouts.Load(); n > 0 {
		cl.fail("no reply within 10s", fmt.Errorf("%d sends had no reply within 10s", n))
	}
	// Replies get a full drain period after the last send, however late the sends ended.
	drainCtx, cancelDrain := context.WithTimeout(ctx, o.Drain)
	defer cancelDrain()
	cl.drain(drainCtx)
	close(stopProgress)
	<-progressDone
	late := cl.checkHistory(ctx)
	if snapTo.at.IsZero() { // the phase was cut short
		snapTo = cl.snapshot(server)
	}
	if snapFrom.at.IsZero() {
		snapFrom = snapTo
	}

	var t tally
	for _, c := range cl.convs {
		c.count(&t)
	}
	row := Row{
		Target: spec.Target, Mode: spec.Mode, Bot: spec.Bot, Phase: phase, Conversations: len(cl.convs), Rate: rate,
		Sent: t.sent, Acked: t.acked, Failed: t.failed, Unsent: t.unsent, Replied: t.replied, Lost: t.lost,
		Duplicated: t.duplicated, Unknown: cl.unknown.Swap(0), Errors: cl.errorCounts(), LateOnStream: late,
	}
	cl.errMu.Lock()
	cl.errs = map[string]int64{}
	cl.errMu.Unlock()
	if w := snapTo.at.Sub(snapFrom.at).Seconds(); w > 0 {
		row.Window = w
		row.Throughput = float64(snapTo.replies-snapFrom.replies) / w
		row.SendRate = float64(snapTo.acks-snapFrom.acks) / w
		row.Activities = float64(snapTo.texts-snapFrom.texts) / w
		row.Polls = float64(snapTo.polls-snapFrom.polls) / w
		row.GeneratorCores = (snapTo.genCPU - snapFrom.genCPU).Seconds() / w
		if server != nil {
			cpu := snapTo.serverCPU - snapFrom.serverCPU
			row.ServerCores = cpu.Seconds() / w
			if n := snapTo.replies - snapFrom.replies; n > 0 {
				row.ServerCPUPerReply = float64(cpu.Microseconds()) / float64(n)
			}
		}
	}
	if server != nil {
		if _, rss, err := server(); err == nil {
			row.ServerRSSMiB = float64(rss) / (1 << 20)
		}
	}
	lat, ack, lag := cl.lat.Load(), cl.ackLat.Load(), cl.lag.Load()
	row.Latency = Percentiles{P50: ms(lat.quantile(0.5)), P99: ms(lat.quantile(0.99)), P999: ms(lat.quantile(0.999)), Max: ms(lat.maximum()), N: lat.count()}
	row.AckLatency = Percentiles{P50: ms(ack.quantile(0.5)), P99: ms(ack.quantile(0.99)), P999: ms(ack.quantile(0.999)), Max: ms(ack.maximum()), N: ack.count()}
	row.LagP99 = ms(lag.quantile(0.99))
	return row
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// openLoop sends at rate from start to end, spread over the conversations in turn, whatever
// the replies do: each send is due at start + i/rate, and that due time is what latency is
// measured from.
func (cl *client) openLoop(ctx context.Context, rate float64, start, end time.Time, senders *sync.WaitGroup) {
	jobs := make(chan job, 1<<16)
	for range cl.opts.Workers {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for j := range jobs {
				if ctx.Err() != nil || j.c.isBroken() {
					continue // left unsent: the phase is over, or the stream is gone
				}
				lag := time.Since(j.at)
				if j.at.UnixNano() >= cl.measureFrom.Load() {
					cl.lag.Load().record(lag)
				}
				cl.send(ctx, j.c, j.n, j.at.UnixNano())
			}
		}()
	}
	defer close(jobs)
	interval := float64(time.Second) / rate
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 0; ; i++ {
		at := start.Add(time.Duration(float64(i) * interval))
		if !at.Before(end) {
			return
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		c := cl.convs[i%len(cl.convs)]
		select {
		case jobs <- job{c: c, n: c.begin(), at: at}:
		case <-ctx.Done():
			return
		}
	}
}

// closedLoop has every conversation send, wait for the reply (at most 10s, counted in
// timeouts), and send again, until end.
func (cl *client) closedLoop(ctx context.Context, end time.Time, senders *sync.WaitGroup, timeouts *atomic.Int64) {
	const replyWait = 10 * time.Second
	for _, c := range cl.convs {
		senders.Add(1)
		go func() {
			defer senders.Done()
			t := time.NewTimer(time.Hour)
			defer t.Stop()
			for ctx.Err() == nil && time.Now().Before(end) && !c.isBroken() {
				n := c.begin()
				cl.send(ctx, c, n, time.Now().UnixNano())
				t.Reset(replyWait)
				select {
				case <-c.replied:
				case <-t.C:
					timeouts.Add(1)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
}

// drain waits until every acknowledged send has its reply, or ctx ends. Polling conversations
// with replies missing are polled again.
func (cl *client) drain(ctx context.Context) {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		missing := false
		for _, c := range cl.convs {
			if c.outstanding() > 0 {
				missing = true
				if cl.mode != ModePoll {
					break
				}
				select {
				case c.kick <- struct{}{}:
				default:
				}
			}
		}
		if !missing {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkHistory looks for the replies a websocket stream did not deliver within the drain in the
// server's history (GET /activities), so that a reply the server has but its stream is late with
// is told apart from one it never had (lost). It returns how many it found there.
func (cl *client) checkHistory(ctx context.Context) int64 {
	if cl.mode != ModeWebsocket || cl.ep.kind != KindDirectLine {
		return 0
	}
	var missing []*conv
	var before int64
	for _, c := range cl.convs {
		if n := c.outstanding(); n > 0 {
			missing = append(missing, c)
			before += n
		}
	}
	if before == 0 {
		return 0
	}
	cl.measureFrom.Store(math.MaxInt64) // what is found here is not a stream's latency
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var after int64
	for _, c := range missing {
		c.watermark = "" // the whole history
		cl.poll(ctx, c)
		after += c.outstanding()
	}
	return before - after
}

// progress prints a line a second, and takes the snapshots that bound the measured window.
func (cl *client) progress(label string, start, from, end time.Time, server sampler, w io.Writer, stop <-chan struct{}, snapFrom, snapTo *counters) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	fromT, endT := time.NewTimer(time.Until(from)), time.NewTimer(time.Until(end))
	defer fromT.Stop()
	defer endT.Stop()
	last := cl.snapshot(nil)
	for {
		select {
		case <-stop:
			return
		case <-fromT.C:
			*snapFrom = cl.snapshot(server)
		case <-endT.C:
			*snapTo = cl.snapshot(server)
		case now := <-tick.C:
			cur := cl.snapshot(nil)
			win := cl.window.Swap(new(histogram))
			dt := cur.at.Sub(last.at).Seconds()
			phase := "sending"
			if now.Before(from) {
				phase = "warm-up"
			} else if !now.Before(end) {
				phase = "draining"
			}
			var errs int64
			for _, v := range cl.errorCounts() {
				errs += v
			}
			fmt.Fprintf(w, "  %-40s %5.1fs %-8s sends %7.0f/s  replies %7.0f/s  p50 %7.2fms  p99 %8.2fms  errors %d\n",
				label, now.Sub(start).Seconds(), phase, float64(cur.acks-last.acks)/dt, float64(cur.replies-last.replies)/dt,
				ms(win.quantile(0.5)), ms(win.quantile(0.99)), errs)
			last = cur
		}
	}
}
