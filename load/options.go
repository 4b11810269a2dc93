package load

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits that keep every run bounded.
const (
	// MaxDuration caps --duration (one phase) and --hold.
	MaxDuration = 10 * time.Minute
	// MaxConversations caps the conversations of one run: the generator holds a socket for each,
	// and a process may open 20,000 files on the machine the goals are set for.
	MaxConversations = 19000
)

// Target names.
const (
	TargetRelay             = "relay"
	TargetDLRelay           = "dlrelay" // the Direct Line-shaped baseline: the bridge's wire work and nothing else
	TargetBridgeMemory      = "bridge-memory"
	TargetBridgeSQLite      = "bridge-sqlite"
	TargetBridgeRedis       = "bridge-redis" // a redis-server of the run's own and Spec.Instances bridges on it
	TargetOfflineDirectLine = "offline-directline"
	TargetURL               = "url" // a server already running, given by Options.URL
)

// Modes: how replies come back.
const (
	ModeWebsocket = "ws"   // a websocket stream (Direct Line) or the relay's socket
	ModePoll      = "poll" // GET /activities?watermark= after each send and every PollInterval
)

// Bots: who answers.
const (
	BotInProcess = "inproc" // the bridge's sandbox bot running a one-rule echo script
	BotHTTP      = "http"   // the generator's Bot Framework echo bot, in its own process
	BotNone      = "none"   // the relay: no bot, the server echoes
)

// Kinds of server, for Options.URL.
const (
	KindDirectLine        = "directline"
	KindRelay             = "relay"
	KindOfflineDirectLine = "offline-directline"
)

// MaxInstances caps the bridge processes of a bridge-redis run.
const MaxInstances = 5

// Spec is one row of a run: a target, the way replies come back, the bot, and for
// bridge-redis how many bridge processes share the Redis.
type Spec struct {
	Target    string
	Mode      string
	Bot       string
	Instances int // bridge-redis: 1..MaxInstances (0: Options.Instances); 1 for the others
}

// String writes the spec as ParseSpecs reads it: target:mode:bot, and :instances when more than one.
func (s Spec) String() string {
	str := s.Target + ":" + s.Mode + ":" + s.Bot
	if s.Instances > 1 {
		str += ":" + strconv.Itoa(s.Instances)
	}
	return str
}

// DefaultCompare is the side-by-side run: the bare relay, the Direct Line-shaped baseline, the bridge with each store (Redis:
// one instance, its redis-server started for the run) and its in-process bot, offline-directline and the bridge polled through the same HTTP bot.
var DefaultCompare = []Spec{
	{TargetRelay, ModeWebsocket, BotNone, 0},
	{TargetDLRelay, ModeWebsocket, BotInProcess, 0},
	{TargetBridgeMemory, ModeWebsocket, BotInProcess, 0},
	{TargetBridgeSQLite, ModeWebsocket, BotInProcess, 0},
	{TargetBridgeRedis, ModeWebsocket, BotInProcess, 0},
	{TargetOfflineDirectLine, ModePoll, BotHTTP, 0},
	{TargetBridgeMemory, ModePoll, BotHTTP, 0},
}

// ParseSpecs reads a comma-separated list of target[:mode[:bot[:instances]]].
func ParseSpecs(s string) ([]Spec, error) {
	var out []Spec
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ":")
		if len(parts) > 4 {
			return nil, fmt.Errorf("run %q: want target[:mode[:bot[:instances]]]", item)
		}
		sp := Spec{Target: parts[0]}
		if len(parts) > 1 {
			sp.Mode = parts[1]
		}
		if len(parts) > 2 {
			sp.Bot = parts[2]
		}
		if len(parts) > 3 {
			n, err := strconv.Atoi(parts[3])
			if err != nil || n < 1 {
				return nil, fmt.Errorf("run %q: instances %q must be a positive number", item, parts[3])
			}
			sp.Instances = n
		}
		sp, err := sp.complete()
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	if len(out) == 0 {
		return nil, errors.New("no runs given")
	}
	return out, nil
}

// complete fills the defaults of a spec and checks the combination.
func (s Spec) complete() (Spec, error) {
	switch s.Target {
	case TargetRelay:
		s.Mode = orDefault(s.Mode, ModeWebsocket)
		s.Bot = orDefault(s.Bot, BotNone)
		if s.Mode != ModeWebsocket || s.Bot != BotNone {
			return s, fmt.Errorf("run %s: the relay has only its websocket and no bot", s)
		}
	case TargetDLRelay:
		s.Mode = orDefault(s.Mode, ModeWebsocket)
		s.Bot = orDefault(s.Bot, BotInProcess)
		if s.Mode != ModeWebsocket || s.Bot != BotInProcess {
			return s, fmt.Errorf("run %s: the Direct Line-shaped baseline has only its websocket stream and its in-process bot", s)
		}
	case TargetBridgeMemory, TargetBridgeSQLite, TargetBridgeRedis:
		s.Mode = orDefault(s.Mode, ModeWebsocket)
		s.Bot = orDefault(s.Bot, BotInProcess)
		if s.Bot != BotInProcess && s.Bot != BotHTTP {
			return s, fmt.Errorf("run %s: bot must be %s or %s", s, BotInProcess, BotHTTP)
		}
	case TargetOfflineDirectLine:
		s.Mode = orDefault(s.Mode, ModePoll)
		s.Bot = orDefault(s.Bot, BotHTTP)
		if s.Mode != ModePoll || s.Bot != BotHTTP {
			return s, fmt.Errorf("run %s: offline-directline has no websocket stream and needs an HTTP bot", s)
		}
	case TargetURL:
		s.Mode = orDefault(s.Mode, ModeWebsocket)
		s.Bot = orDefault(s.Bot, "external")
	default:
		return s, fmt.Errorf("unknown target %q (targets: %s, %s, %s, %s, %s, %s)", s.Target, TargetRelay, TargetDLRelay, TargetBridgeMemory, TargetBridgeSQLite, TargetBridgeRedis, TargetOfflineDirectLine)
	}
	switch {
	case s.Target != TargetBridgeRedis && s.Instances > 1:
		return s, fmt.Errorf("run %s: only %s runs several instances (the others keep their state in one process)", s, TargetBridgeRedis)
	case s.Instances > MaxInstances:
		return s, fmt.Errorf("run %s: at most %d instances", s, MaxInstances)
	}
	if s.Mode != ModeWebsocket && s.Mode != ModePoll {
		return s, fmt.Errorf("run %s: mode must be %s or %s", s, ModeWebsocket, ModePoll)
	}
	return s, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Options configures a run.
type Options struct {
	// Runs are the rows, run one after another. Default: DefaultCompare.
	Runs []Spec
	// URL is the base of a server already running on loopback, for the target "url"; Kind says
	// what it is and Secret is its Direct Line secret.
	URL, Kind, Secret string

	// Conversations is how many conversations each run holds. Default: 1,000.
	Conversations int
	// Phases are "max" (closed loop: each conversation sends again when its reply is back, for
	// the most a target can do) and "rate" (open loop at Rate). Default: both.
	Phases []string
	// Rate is the open-loop send rate of websocket runs, per second. Default: 5,000.
	Rate float64
	// PollRate is the open-loop rate of polling runs. 0: half what offline-directline managed in
	// its max phase (the run lists it first), or Rate/10 without it.
	PollRate float64
	// Duration is how long each phase sends, warm-up included. Default: 10s; at most MaxDuration.
	Duration time.Duration
	// Warmup is the start of each phase left out of latency and throughput. Default: a fifth of
	// Duration, at most 2s.
	Warmup time.Duration
	// Drain bounds the wait for the last replies after a phase. Default: 10s.
	Drain time.Duration
	// Workers send the open-loop activities concurrently. Default: 256.
	Workers int
	// HTTPConns caps the generator's HTTP connections per target. Default: 512.
	HTTPConns int
	// Sources is how many loopback source addresses (127.0.0.2 upwards) the sockets are spread
	// over. Default: 16.
	Sources int
	// PollInterval is how often a polling conversation polls besides after each send. Default: 1s.
	PollInterval time.Duration

	// Instances is how many bridge processes a bridge-redis run without its own count starts on
	// its Redis: conversation i is opened on instance i, its sends POSTed to instance i+1 and its
	// stream read from instance i+2 (modulo Instances). Default: 1.
	Instances int
	// KillAfter, when set, SIGKILLs one bridge of every run with two instances or more that long
	// after its first phase began: its clients reconnect to another instance from their
	// watermark and resend what failed under the same clientActivityID, and the row's lost and
	// duplicated counts say whether anything acknowledged was lost or doubled.
	KillAfter time.Duration
	// RedisServer is the redis-server binary of bridge-redis runs. Default: found on PATH.
	RedisServer string

	// Executable is the bridge binary that children are started from. Default: os.Executable().
	Executable string
	// InteropDir is conformance/interop, with offline-directline in its node_modules. Default:
	// looked for from the working directory upwards.
	InteropDir string
}

// Defaults returns the options of "bridge load --compare" with nothing else given.
func Defaults() Options {
	return Options{
		Runs: DefaultCompare, Conversations: 1000, Phases: []string{PhaseMax, PhaseRate},
		Rate: 5000, Duration: 10 * time.Second, Drain: 10 * time.Second, Workers: 256,
		HTTPConns: 512, Sources: 16, PollInterval: time.Second,
	}
}

// Phase names.
const (
	PhaseMax  = "max"
	PhaseRate = "rate"
)

// Validate checks the options and fills what is derived.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Runs) == 0 {
		o.Runs = DefaultCompare
	}
	o.Runs = slices.Clone(o.Runs) // completed below; DefaultCompare and the caller's slice stay as they are
	if o.Instances <= 0 {
		o.Instances = 1
	}
	if o.KillAfter < 0 {
		errs = append(errs, errors.New("kill-after must not be negative"))
	}
	for i, s := range o.Runs {
		if s.Target == TargetBridgeRedis && s.Instances == 0 {
			s.Instances = o.Instances
		}
		c, err := s.complete()
		if err != nil {
			errs = append(errs, err)
		}
		o.Runs[i] = c
		if c.Target == TargetURL {
			if err := CheckLoopbackURL(o.URL); err != nil {
				errs = append(errs, fmt.Errorf("--url: %w", err))
			}
			switch o.Kind {
			case KindDirectLine, KindOfflineDirectLine, KindRelay:
			default:
				errs = append(errs, fmt.Errorf("--kind %q must be %s, %s or %s", o.Kind, KindDirectLine, KindOfflineDirectLine, KindRelay))
			}
			if o.Kind == KindDirectLine && o.Secret == "" {
				errs = append(errs, errors.New("--secret is required for a Direct Line server"))
			}
		}
	}
	if o.Conversations < 1 || o.Conversations > MaxConversations {
		errs = append(errs, fmt.Errorf("conversations %d must be within 1..%d", o.Conversations, MaxConversations))
	}
	if len(o.Phases) == 0 {
		o.Phases = []string{PhaseMax, PhaseRate}
	}
	for _, p := range o.Phases {
		if p != PhaseMax && p != PhaseRate {
			errs = append(errs, fmt.Errorf("phase %q must be %s or %s", p, PhaseMax, PhaseRate))
		}
	}
	if o.Rate <= 0 || o.PollRate < 0 {
		errs = append(errs, errors.New("rates must be positive"))
	}
	if o.Duration <= 0 || o.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration %s must be within 0..%s", o.Duration, MaxDuration))
	}
	if o.Warmup <= 0 {
		o.Warmup = min(o.Duration/5, 2*time.Second)
	}
	if o.Warmup >= o.Duration {
		errs = append(errs, errors.New("warmup must be shorter than the duration"))
	}
	if o.Drain <= 0 {
		o.Drain = 10 * time.Second
	}
	o.Drain = min(o.Drain, time.Minute)
	if o.Workers <= 0 {
		o.Workers = 256
	}
	if o.HTTPConns <= 0 {
		o.HTTPConns = 512
	}
	if o.Sources <= 0 {
		o.Sources = 16
	}
	o.Sources = min(o.Sources, 250)
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	return nil
}

// CheckLoopbackURL refuses a URL whose host is not a loopback address (127.0.0.0/8, ::1 or
// "localhost"): the generator never sends traffic off the machine.
func CheckLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %w", raw, err)
	}
	switch u.Scheme {
	case "http", "ws":
	default:
		return fmt.Errorf("%q: the scheme must be http or ws", raw)
	}
	return checkLoopbackHost(u.Hostname())
}

func checkLoopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address: load runs stay on this machine", host)
	}
	return nil
}
