package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/load"
)

const loadUsage = `usage:
  bridge load [--compare] [--runs LIST] [--conversations N] [--rate R] [--duration D] [flags]
  bridge load --url URL --kind directline|offline-directline|relay [--secret S] [--mode ws|poll] [flags]
  bridge load --idle [--conversations 9500] [--hold 130s] [--store sqlite|memory] [--bot inproc|directline]

Loads Direct Line servers on this machine (loopback only) and reports throughput, latency (p50,
p99, p99.9 from each send's due time to its reply), errors, and lost or duplicated activities.
Each run starts its server in a process of its own, opens the conversations (sockets spread over
source addresses 127.0.0.2 upwards), then runs its phases: "max" (closed loop: each conversation
sends again once its reply is back) and "rate" (open loop at --rate per second, --poll-rate for
polling runs). A progress line is printed every second.

--compare (the default list of runs) puts side by side: the bare websocket relay, the Direct
Line-shaped baseline (dlrelay: the bridge's wire work — POST with a bearer check, the echo and an
in-process bot's reply as ActivitySet frames — with no store and no bridge), the bridge
with the in-memory and with the durable store (its in-process echo bot), offline-directline
(node, polled, through an HTTP echo bot) and the bridge polled through the same bot; then the
ratios between them.

--idle holds --conversations idle conversations (a websocket stream each, one exchange made) on
a bridge process for --hold, and reports its memory (VmRSS) and goroutines per conversation. With
--bot directline the bridge reaches its bot as a hosted bot, through a Direct Line websocket per
conversation to a second bridge process, so that each conversation holds two sockets.

--instances N runs bridge-redis with one bridge and with N bridge processes on one redis-server
(started for the run, appendfsync always), side by side: conversation i is opened on instance i,
its sends are POSTed to instance i+1 and its stream is read from instance i+2, so every reply
crosses instances. --kill-after D SIGKILLs the second instance D into the run: its clients
reconnect to another instance from their watermark and resend what failed under the same
clientActivityID; the lost and duplicated columns say what that cost (the exit status is 1 when
anything acknowledged was lost or duplicated).

Runs: target[:mode[:bot[:instances]]], comma-separated; targets relay, dlrelay,
bridge-memory, bridge-sqlite, bridge-redis, offline-directline; modes ws, poll; bots inproc, http.

flags:
`

// loadFlags are the flags of "bridge load".
type loadFlags struct {
	fs                                    *flag.FlagSet
	compare, idle, jsonOut, markdown      *bool
	runs, url, kind, secret, mode, phases *string
	interop, store, bot, logLevel         *string
	serve, listen                         *string
	conversations, workers, httpConns     *int
	sources, instances                    *int
	killAfter                             *time.Duration
	rate, pollRate                        *float64
	duration, warmup, drain, pollInterval *time.Duration
	hold                                  *time.Duration
}

// newLoadFlags declares the flags of "bridge load".
func newLoadFlags(getenv func(string) string, stderr io.Writer) *loadFlags {
	fs := flag.NewFlagSet("bridge load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, loadUsage)
		fs.PrintDefaults()
	}
	d := load.Defaults()
	return &loadFlags{
		fs:            fs,
		compare:       fs.Bool("compare", false, "run the side-by-side comparison (the default runs)"),
		runs:          fs.String("runs", "", "the runs, e.g. relay,bridge-sqlite:ws,offline-directline:poll (default: the comparison)"),
		url:           fs.String("url", "", "load a server already running on loopback at this base URL instead"),
		kind:          fs.String("kind", load.KindDirectLine, "what --url is: directline, offline-directline or relay"),
		secret:        fs.String("secret", getenv("BRIDGE_LOAD_SECRET"), "the Direct Line secret of --url (env BRIDGE_LOAD_SECRET)"),
		mode:          fs.String("mode", load.ModeWebsocket, "with --url: ws or poll"),
		conversations: fs.Int("conversations", d.Conversations, "conversations per run"),
		phases:        fs.String("phases", "max,rate", "the phases of each run: max, rate"),
		rate:          fs.Float64("rate", d.Rate, "open-loop sends per second of websocket runs"),
		pollRate:      fs.Float64("poll-rate", 0, "open-loop sends per second of polling runs (0: half offline-directline's max)"),
		duration:      fs.Duration("duration", d.Duration, fmt.Sprintf("how long each phase sends, warm-up included (at most %s)", load.MaxDuration)),
		warmup:        fs.Duration("warmup", 0, "the start of each phase left out of the numbers (default: a fifth of --duration, at most 2s)"),
		drain:         fs.Duration("drain", d.Drain, "how long to wait for the last replies after a phase"),
		workers:       fs.Int("workers", d.Workers, "concurrent open-loop senders"),
		httpConns:     fs.Int("http-conns", d.HTTPConns, "HTTP connections per target"),
		sources:       fs.Int("sources", d.Sources, "loopback source addresses to spread sockets over"),
		pollInterval:  fs.Duration("poll-interval", d.PollInterval, "polling runs: the interval between polls besides those after sends"),
		interop:       fs.String("interop-dir", "", "conformance/interop with offline-directline installed (default: found from the working directory)"),
		idle:          fs.Bool("idle", false, "measure the memory and goroutines of idle conversations"),
		hold:          fs.Duration("hold", 130*time.Second, "--idle: how long to hold the conversations (a forced GC runs every 2 minutes)"),
		store:         fs.String("store", "sqlite", "--idle: the bridge's store, "+strings.Join(app.StoreNames(), " or ")),
		bot:           fs.String("bot", "inproc", "--idle: the bot, in the bridge's process (inproc) or through a Direct Line websocket per conversation to another process (directline)"),
		jsonOut:       fs.Bool("json", false, "write the report as JSON on stdout (progress goes to stderr)"),
		markdown:      fs.Bool("markdown", false, "write the report as Markdown on stdout (progress goes to stderr)"),
		logLevel:      fs.String("log-level", "warn", "the generator's log level"),
		serve:         fs.String("serve", "", "run a fixture in this process: relay, dlrelay or echobot (used by the runs)"),
		listen:        fs.String("listen", "127.0.0.1:0", "--serve: the loopback address to listen on"),
		instances:     fs.Int("instances", 1, fmt.Sprintf("bridge-redis runs: bridge processes on one Redis (at most %d); alone, it runs bridge-redis with 1 and with N side by side", load.MaxInstances)),
		killAfter:     fs.Duration("kill-after", 0, "runs with 2 instances or more: SIGKILL the second instance this long into the run"),
	}
}

// report is what a load run reports, in any of three formats.
type report interface {
	WriteJSON(io.Writer) error
	WriteMarkdown(io.Writer) error
	WriteText(io.Writer) error
}

// runLoad is "bridge load …".
func runLoad(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newLoadFlags(getenv, stderr)
	if err := f.fs.Parse(args); err != nil {
		return flagError(err)
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("load: unexpected arguments %v", f.fs.Args())
	}
	level, err := zerolog.ParseLevel(*f.logLevel)
	if err != nil {
		return fmt.Errorf("load: --log-level: %w", err)
	}
	log := zerolog.New(stderr).Level(level).With().Timestamp().Str("component", "load").Logger()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *f.serve != "" {
		return load.Serve(ctx, *f.serve, *f.listen, stdout, log)
	}
	progress := stdout
	if *f.jsonOut || *f.markdown {
		progress = stderr
	}
	command := "bridge load " + strings.Join(args, " ")
	if *f.idle {
		return f.runIdle(ctx, command, stdout, progress, log)
	}
	return f.runCompare(ctx, command, stdout, progress, log)
}

// write writes r to stdout in the format the flags ask for.
func (f *loadFlags) write(stdout io.Writer, r report) error {
	switch {
	case *f.jsonOut:
		return r.WriteJSON(stdout)
	case *f.markdown:
		return r.WriteMarkdown(stdout)
	}
	fmt.Fprintln(stdout)
	return r.WriteText(stdout)
}

// runIdle is "bridge load --idle …".
func (f *loadFlags) runIdle(ctx context.Context, command string, stdout, progress io.Writer, log zerolog.Logger) error {
	o := load.IdleOptions{Conversations: *f.conversations, Hold: *f.hold, Store: *f.store, Bot: *f.bot, Sources: *f.sources}
	if !flagSet(f.fs, "conversations") {
		o.Conversations = load.DefaultIdleConversations
	}
	res, err := load.RunIdle(ctx, o, progress, log)
	if res != nil {
		res.Command = command
		if werr := f.write(stdout, res); werr != nil {
			return werr
		}
	}
	return err
}

// runCompare is "bridge load" with --compare, --runs or --url.
func (f *loadFlags) runCompare(ctx context.Context, command string, stdout, progress io.Writer, log zerolog.Logger) error {
	o := load.Defaults()
	o.Conversations, o.Rate, o.PollRate, o.Duration, o.Warmup, o.Drain = *f.conversations, *f.rate, *f.pollRate, *f.duration, *f.warmup, *f.drain
	o.Workers, o.HTTPConns, o.Sources, o.PollInterval, o.InteropDir = *f.workers, *f.httpConns, *f.sources, *f.pollInterval, *f.interop
	o.Phases = strings.Split(*f.phases, ",")
	o.Instances, o.KillAfter = *f.instances, *f.killAfter
	var err error
	switch {
	case *f.url != "":
		if *f.compare || *f.runs != "" {
			return errors.New("load: --url loads one server: not with --compare or --runs")
		}
		o.Runs = []load.Spec{{Target: load.TargetURL, Mode: *f.mode}}
		o.URL, o.Kind, o.Secret = *f.url, *f.kind, *f.secret
	case *f.runs != "":
		if o.Runs, err = load.ParseSpecs(*f.runs); err != nil {
			return fmt.Errorf("load: --runs: %w", err)
		}
	case *f.instances > 1 && !*f.compare:
		o.Runs = []load.Spec{{Target: load.TargetBridgeRedis, Instances: 1}, {Target: load.TargetBridgeRedis, Instances: *f.instances}}
	default:
		o.Runs = load.DefaultCompare
	}
	rep, err := load.Run(ctx, o, progress, log)
	if rep != nil {
		rep.Command = command
		if werr := f.write(stdout, rep); werr != nil {
			return werr
		}
		if lost := lostOrDuplicated(rep); lost != "" && err == nil {
			err = fmt.Errorf("load: %s", lost)
		}
	}
	return err
}

// lostOrDuplicated names the runs that lost or duplicated activities: the exit status says so.
func lostOrDuplicated(rep *load.Report) string {
	var bad []string
	for _, r := range rep.Rows {
		if r.Lost > 0 || r.Duplicated > 0 {
			bad = append(bad, fmt.Sprintf("%s %s lost %d and duplicated %d", r.Name(), r.Phase, r.Lost, r.Duplicated))
		}
	}
	return strings.Join(bad, "; ")
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
