package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// Run runs o.Runs one after another, each in its own processes, and reports every phase of each,
// with the ratios between them. Progress lines go to progress. A run that cannot start is
// reported as skipped; the error then names it, unless it is offline-directline missing.
func Run(ctx context.Context, o Options, progress io.Writer, log zerolog.Logger) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// Every phase sends for Duration, finishes its sends and waits for replies (a drain each),
	// then looks late replies up (30s at most); opening and closing are bounded too.
	bound := time.Duration(len(o.Runs)) * (time.Duration(len(o.Phases))*(o.Duration+2*o.Drain+35*time.Second) + 3*time.Minute)
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()

	rep := &Report{Started: time.Now(), Machine: describeMachine(), Duration: o.Duration.Seconds(), Warmup: o.Warmup.Seconds()}
	if need := uint64(o.Conversations + o.HTTPConns + 64); rep.Machine.OpenFiles != 0 && need > rep.Machine.OpenFiles {
		return nil, fmt.Errorf("load: %d conversations and %d HTTP connections need %d open files, over the limit of %d (ulimit -n)",
			o.Conversations, o.HTTPConns, need, rep.Machine.OpenFiles)
	}
	var errs []error
	pollRate := o.PollRate
	for _, spec := range o.Runs {
		if ctx.Err() != nil {
			break
		}
		// The open-loop rate, known once the run's max phase is over: polling runs are
		// compared with offline-directline at half what it managed in its closed loop (a load
		// it can carry), so it sets the rate for itself and for the polling runs after it.
		rate := func(maxRow *Row) float64 {
			switch {
			case spec.Mode != ModePoll:
				return o.Rate
			case pollRate > 0:
				return pollRate
			case spec.Target == TargetOfflineDirectLine && maxRow != nil && maxRow.Throughput >= 2:
				pollRate = float64(int(maxRow.Throughput / 2))
				return pollRate
			}
			return o.Rate / 10
		}
		rows, err := runOne(ctx, spec, &o, rate, progress, log)
		if err != nil {
			why := err.Error()
			if errors.Is(err, errNoInterop) {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s skipped: %s", spec, why))
			} else {
				errs = append(errs, fmt.Errorf("%s: %w", spec, err))
			}
			fmt.Fprintf(progress, "%s: skipped: %s\n", spec, why)
			if len(rows) == 0 {
				rows = []Row{{Target: spec.Target, Mode: spec.Mode, Bot: spec.Bot, Instances: spec.Instances, Skipped: firstLine(why)}}
			}
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	rep.Machine.LoadAfter = loadAverage()
	rep.Ratios = ratios(rep.Rows)
	rep.Notes = append(rep.Notes, notes(&o, rep.Rows)...)
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("load: the run was cut short: %w", err))
	}
	return rep, errors.Join(errs...)
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// runOne starts spec's target, opens the conversations, runs the phases and stops it all.
// rate gives the open-loop rate from the max phase's row (nil when there was none).
func runOne(ctx context.Context, spec Spec, o *Options, rate func(maxRow *Row) float64, progress io.Writer, log zerolog.Logger) (rows []Row, err error) {
	fmt.Fprintf(progress, "%s: starting\n", spec)
	t, err := startTarget(ctx, spec, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := t.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	cl := newClient(t.ep, spec.Mode, o, log)
	defer cl.close()
	began := time.Now()
	last := began
	err = cl.open(ctx, o.Conversations, func(n int) {
		if now := time.Now(); now.Sub(last) >= time.Second {
			last = now
			fmt.Fprintf(progress, "  %s: %d of %d conversations open\n", spec, n, o.Conversations)
		}
	})
	if err != nil {
		return nil, err
	}
	took := time.Since(began)
	fmt.Fprintf(progress, "%s: %d conversations open in %s (%.0f/s)\n", spec, o.Conversations, took.Round(time.Millisecond),
		float64(o.Conversations)/took.Seconds())
	if o.KillAfter > 0 && len(t.bridges) > 1 {
		killer := time.AfterFunc(o.KillAfter, func() {
			err := t.kill(1)
			fmt.Fprintf(progress, "%s: instance 2 of %d SIGKILLed %s into the run (%v); its clients move to the others\n", spec, len(t.bridges), o.KillAfter, errOrOK(err))
		})
		defer killer.Stop()
	}
	for _, phase := range o.Phases {
		if ctx.Err() != nil {
			break
		}
		r := 0.0
		if phase == PhaseRate {
			var maxRow *Row
			for i := range rows {
				if rows[i].Phase == PhaseMax {
					maxRow = &rows[i]
				}
			}
			r = rate(maxRow)
		}
		row := cl.runPhase(ctx, spec, phase, r, t.sampler(), progress)
		row.Instances = max(spec.Instances, 1)
		row.Resends, row.Reconnects = cl.resends.Swap(0), cl.reconnects.Swap(0)
		fmt.Fprintf(progress, "%s %s: %s replies/s, p50 %.2f ms, p99 %.2f ms, lost %d, duplicated %d, errors %s\n",
			spec, phase, compact(row.Throughput), row.Latency.P50, row.Latency.P99, row.Lost, row.Duplicated, errorSummary(row))
		rows = append(rows, row)
	}
	return rows, nil
}

// find returns the first row of target, mode and phase that ran.
func find(rows []Row, target, mode, phase string) (Row, bool) {
	for _, r := range rows {
		if r.Target == target && r.Mode == mode && r.Phase == phase && r.Skipped == "" && r.Throughput > 0 {
			return r, true
		}
	}
	return Row{}, false
}

func met(ok bool) *bool { return &ok }

// ratios compares the rows: throughput against the bare relay and against offline-directline,
// latency against offline-directline at the same rate, and the goals that apply.
func ratios(rows []Row) []Ratio {
	var out []Ratio
	relay, hasRelay := find(rows, TargetRelay, ModeWebsocket, PhaseMax)
	dlr, hasDLR := find(rows, TargetDLRelay, ModeWebsocket, PhaseMax)
	sqlite, hasSQLite := find(rows, TargetBridgeSQLite, ModeWebsocket, PhaseMax)
	odl, hasODL := find(rows, TargetOfflineDirectLine, ModePoll, PhaseMax)
	odlRate, hasODLRate := find(rows, TargetOfflineDirectLine, ModePoll, PhaseRate)
	out = append(out, instanceRatios(rows)...)
	for _, target := range []string{TargetBridgeMemory, TargetBridgeSQLite, TargetBridgeRedis} {
		if b, ok := find(rows, target, ModeWebsocket, PhaseMax); ok {
			if hasDLR {
				out = append(out, dlRelayRatio(b, dlr))
			}
			if target == TargetBridgeRedis && hasSQLite && b.Instances <= 1 {
				v := 100 * b.Throughput / sqlite.Throughput
				out = append(out, Ratio{Name: b.Name() + " max throughput / bridge-sqlite's", Value: v, Unit: "%", Goal: "≥ 50%", Met: met(v >= 50)})
			}
			if hasRelay {
				v := 100 * b.Throughput / relay.Throughput
				out = append(out, Ratio{Name: b.Name() + " max throughput / relay's", Value: v, Unit: "%", Goal: "≥ 60%", Met: met(v >= 60)})
			}
			if hasODL {
				v := b.Throughput / odl.Throughput
				out = append(out, Ratio{Name: b.Name() + " max throughput / offline-directline's (polled)", Value: v, Unit: "x", Goal: "≥ 10x", Met: met(v >= 10)})
			}
		}
		if b, ok := find(rows, target, ModePoll, PhaseMax); ok && hasODL {
			v := b.Throughput / odl.Throughput
			out = append(out, Ratio{Name: b.Name() + " max throughput / offline-directline's, both polled through the HTTP bot", Value: v, Unit: "x", Goal: "≥ 10x", Met: met(v >= 10)})
		}
		if b, ok := find(rows, target, ModePoll, PhaseRate); ok && hasODLRate && b.Rate == odlRate.Rate && odlRate.Latency.P99 > 0 {
			v := b.Latency.P99 / odlRate.Latency.P99
			out = append(out, Ratio{Name: fmt.Sprintf("%s p99 / offline-directline's at %s/s", b.Name(), compact(b.Rate)), Value: v, Unit: "x", Goal: "≤ 0.5x", Met: met(v <= 0.5)})
		}
		if b, ok := find(rows, target, ModeWebsocket, PhaseRate); ok {
			if r, ok := find(rows, TargetRelay, ModeWebsocket, PhaseRate); ok && r.Rate == b.Rate {
				out = append(out, Ratio{Name: fmt.Sprintf("%s p50 added over the relay's at %s/s", b.Name(), compact(b.Rate)), Value: b.Latency.P50 - r.Latency.P50, Unit: " ms"})
			}
			if target == TargetBridgeSQLite {
				out = append(out,
					Ratio{Name: fmt.Sprintf("%s p50 at %s/s", b.Name(), compact(b.Rate)), Value: b.Latency.P50, Unit: " ms", Goal: "≤ 1 ms at 10k/s", Met: goalAt(b, 10000, b.Latency.P50 <= 1)},
					Ratio{Name: fmt.Sprintf("%s p99 at %s/s", b.Name(), compact(b.Rate)), Value: b.Latency.P99, Unit: " ms", Goal: "≤ 10 ms at 10k/s", Met: goalAt(b, 10000, b.Latency.P99 <= 10)})
			}
		}
	}
	return out
}

// dlRelayRatio is a bridge row's throughput as a share of the Direct Line-shaped baseline's: how
// close the bridge comes to what the machine allows for the same wire work. The goals are the
// performance round's: half of it in memory, a third and more with SQLite.
func dlRelayRatio(b, dlr Row) Ratio {
	v := 100 * b.Throughput / dlr.Throughput
	r := Ratio{Name: b.Name() + " max throughput / Direct Line-shaped baseline's", Value: v, Unit: "%"}
	switch b.Target {
	case TargetBridgeMemory:
		r.Goal, r.Met = "≥ 50%", met(v >= 50)
	case TargetBridgeSQLite:
		r.Goal, r.Met = "≥ 35%", met(v >= 35)
	}
	return r
}

// instanceRatios compares a bridge-redis run of several instances with one of a single
// instance: throughput and CPU per reply (on one machine the instances share its cores, so the
// point is the cost of crossing instances, not a speed-up).
func instanceRatios(rows []Row) []Ratio {
	var one *Row
	var out []Ratio
	for i := range rows {
		r := &rows[i]
		if r.Target != TargetBridgeRedis || r.Mode != ModeWebsocket || r.Phase != PhaseMax || r.Skipped != "" || r.Throughput == 0 {
			continue
		}
		if r.Instances <= 1 {
			one = r
			continue
		}
		if one == nil {
			continue
		}
		out = append(out, Ratio{Name: r.Name() + " max throughput / one instance's", Value: r.Throughput / one.Throughput, Unit: "x"})
		if one.ServerCPUPerReply > 0 {
			out = append(out, Ratio{Name: r.Name() + " CPU per reply (bridges + Redis) / one instance's", Value: r.ServerCPUPerReply / one.ServerCPUPerReply, Unit: "x"})
		}
	}
	return out
}

// goalAt judges a goal set for a rate only on a run at that rate or more (and with nothing lost).
func goalAt(r Row, rate float64, ok bool) *bool {
	if r.Rate < rate {
		return nil
	}
	return met(ok && r.Lost == 0 && r.Throughput >= 0.99*r.Rate)
}

// notes explains what the table's numbers mean for this run.
func notes(o *Options, rows []Row) []string {
	n := []string{
		"Latency runs from a send's due time to its reply's arrival at the client (open loop: queueing in the generator counts). The bridge and offline-directline rows take a POST to send and the reply through the bot; the relay row is a websocket echo with no protocol; the dlrelay row does the bridge's wire work (POST with a bearer check, the echo and the reply as ActivitySet frames) with no store and no bridge.",
		fmt.Sprintf("The generator and the servers share the machine's cores; generator cores is the CPU the generator itself used. Polling runs poll after each acknowledged send and every %s.", o.PollInterval),
	}
	for _, r := range rows {
		if r.Lost > 0 || r.Duplicated > 0 {
			n = append(n, fmt.Sprintf("%s %s: %d lost, %d duplicated.", r.Name(), r.Phase, r.Lost, r.Duplicated))
		}
		if r.Rate > 0 && r.Throughput > 0 && r.Throughput < 0.95*r.Rate {
			n = append(n, fmt.Sprintf("%s %s: the target did not keep up with the offered %s/s (%s/s replies): its latencies are queueing.", r.Name(), r.Phase, compact(r.Rate), compact(r.Throughput)))
		}
	}
	return n
}
