// Package module is the contract between a channel package and the wiring (package app): how a
// channel says what its configuration section is, when it is on, how it is built, and what it
// can do once built. It holds no channel and no wiring, so that both can import it.
//
// A channel package registers itself with one exported value:
//
//	var Module = module.Register(module.Spec[Section]{
//		Name: "example", Section: "example", Role: module.ContactCenter,
//		Enabled: func(s *Section) bool { return s.Enabled },
//		New:     newChannel,
//	})
//
// and the wiring lists that value in its registry (app.Channels). What the built channel may
// do beyond bridge.Channel is said by the optional interfaces below: Router, Runner, Drainer,
// Closer, Readier and Describer; a contact center implements bridge.Escalator.
package module

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/internal/metrics"
)

// Role is the part a channel plays in conversations.
type Role int

// Roles.
const (
	// Customer channels are where customers (or, in T1, the contact center) reach the bridge:
	// Direct Line, Omnichannel.
	Customer Role = iota
	// Bot channels reach the bot. Exactly one runs: the enabled one, else the fallback.
	Bot
	// ContactCenter channels take escalations (they are bridge.Escalators); when enabled, their
	// Name is a valid escalation.target.
	ContactCenter
)

// String names the role.
func (r Role) String() string {
	switch r {
	case Customer:
		return "customer"
	case Bot:
		return "bot"
	case ContactCenter:
		return "contact center"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// Spec describes a channel to the wiring. C is its configuration section: a struct with yaml
// tags, env tags on the fields the environment may override (`env:"BRIDGE_…"`), its defaults in
// its doc comments, and, if it has something to check, a Validate() error method that the wiring
// calls at start-up whether or not the channel is enabled (so it checks only what is set).
type Spec[C any] struct {
	// Name is the channel's name with the Hub, and its escalation.target when it is a contact
	// center. Required.
	Name string
	// Section is where C lives in the configuration file: a key ("omnichannel") or a dotted
	// path ("bot.directline"). Channels that share a section ("sandbox") share one value of C.
	// Required.
	Section string
	// Role is the part the channel plays.
	Role Role
	// Defaults returns a section with its defaults filled in. Nil: the zero C (whose zero
	// fields take the defaults their doc comments state).
	Defaults func() C
	// Enabled says whether the section turns the channel on. Nil: always on.
	Enabled func(*C) bool
	// Requires names the channels this one is built on (it finds them with Env.Channel): the
	// wiring refuses a configuration that enables it while turning one of them off.
	Requires []string
	// Fallback marks the bot channel that runs when no other bot channel is enabled.
	Fallback bool
	// BotName, for a bot channel, names the bot when bot.name is not set. It runs before the
	// Hub is built, and may fail (a script that does not parse). Nil: the Hub's default.
	BotName func(*C) (string, error)
	// New builds the channel. The wiring registers it with env.Hub, mounts its routes, starts and
	// stops it. Required.
	New func(*C, Env) (bridge.Channel, error)
	// Unauthenticated says, when the section leaves routes open to anyone without credentials,
	// what such a caller may do ("" when nothing is open). The wiring then refuses to listen on
	// an address other than loopback unless allow_unauthenticated_public is set. Nil: nothing.
	Unauthenticated func(*C) string
}

// Hub is the bridge's Hub as the channels' constructors see it: every interface a channel may
// need of it (each constructor takes the few it uses), never its Store. *bridge.Hub implements
// it.
type Hub interface {
	bridge.Receiver
	bridge.Invoker
	bridge.Conversations
	bridge.ContactCenter
	bridge.Logs
	bridge.ChannelState
	// Bot returns the bot's account as the customer sees it.
	Bot() activity.ChannelAccount
}

var _ Hub = (*bridge.Hub)(nil)

// Env is what the wiring gives a channel's constructor.
type Env struct {
	// Hub relays the channel's activities (the bridge's *bridge.Hub).
	Hub Hub
	// Log is the channel's logger (component=<name>).
	Log zerolog.Logger
	// PublicURL is the bridge's public base URL, without a trailing slash.
	PublicURL string
	// DataDir is a directory kept across restarts (the durable store's), for what must survive
	// one (a generated secret, a signing key). Empty when the store is not durable.
	DataDir string
	// EscalationTarget is escalation.target: the contact center's channel name, or "none" (then
	// handoff signals are the customer's business, as on a plain Direct Line service).
	EscalationTarget string
	// BotTimeout bounds one delivery to the bot (bot.timeout).
	BotTimeout time.Duration
	// Channels returns a channel built before this one (registry order), or nil.
	Channels func(name string) bridge.Channel
	// Shared, set when the store is shared by several bridge processes (Redis), returns the
	// value under key that every process shares, storing create's first when there is none: for
	// a generated secret or signing key, which all instances must agree on (a token minted by
	// one is accepted by another). Nil otherwise: keep such values in DataDir.
	Shared func(ctx context.Context, key string, create func() ([]byte, error)) ([]byte, error)
	// Leases, set when the store is shared by several bridge processes, are its leases, for a
	// channel whose decisions must be made by one process at a time (the sandbox desk's
	// routing). Nil otherwise.
	Leases bridge.Leaser
	// Metrics is the bridge's metrics: a channel counts its outbound HTTP calls through
	// Metrics.Transport (one fixed peer name per client) and its websocket teardowns. Nil
	// (tests): none; its methods accept a nil receiver.
	Metrics *metrics.Metrics
}

// Channel returns the channel built under name before this one, or nil.
func (e Env) Channel(name string) bridge.Channel {
	if e.Channels == nil {
		return nil
	}
	return e.Channels(name)
}

// NoEscalation is the escalation.target that sends escalations nowhere: handoff signals pass
// through to the customer's client.
const NoEscalation = "none"

// Registration is a Spec with its section type erased, as the wiring's registry lists it.
type Registration struct {
	// Name, Section, Role and Fallback are the Spec's.
	Name, Section string
	Role          Role
	Fallback      bool
	// Requires is the Spec's: the channels this one is built on.
	Requires []string

	newSection func() any
	enabled    func(any) bool
	botName    func(any) (string, error)
	unauth     func(any) string
	build      func(any, Env) (bridge.Channel, error)
}

// Register turns a Spec into the Registration a registry lists. It panics on a Spec without
// Name, Section or New: that is a programming error, found by the first test that loads it.
func Register[C any](s Spec[C]) Registration {
	if s.Name == "" || s.Section == "" || s.New == nil {
		panic("module: a Spec needs Name, Section and New")
	}
	r := Registration{Name: s.Name, Section: s.Section, Role: s.Role, Fallback: s.Fallback, Requires: s.Requires}
	r.newSection = func() any {
		c := new(C)
		if s.Defaults != nil {
			*c = s.Defaults()
		}
		return c
	}
	r.enabled = func(sec any) bool { return s.Enabled == nil || s.Enabled(sec.(*C)) }
	if s.BotName != nil {
		r.botName = func(sec any) (string, error) { return s.BotName(sec.(*C)) }
	}
	if s.Unauthenticated != nil {
		r.unauth = func(sec any) string { return s.Unauthenticated(sec.(*C)) }
	}
	r.build = func(sec any, env Env) (bridge.Channel, error) { return s.New(sec.(*C), env) }
	return r
}

// NewSection returns a new section (a pointer to C) with its defaults.
func (r Registration) NewSection() any { return r.newSection() }

// Enabled reports whether section turns the channel on.
func (r Registration) Enabled(section any) bool { return r.enabled(section) }

// BotName returns the bot's name this bot channel would give it, or "" when it has no say.
func (r Registration) BotName(section any) (string, error) {
	if r.botName == nil {
		return "", nil
	}
	return r.botName(section)
}

// Unauthenticated says what anyone may do without credentials when section runs the channel,
// or "" when it leaves nothing open (Spec.Unauthenticated).
func (r Registration) Unauthenticated(section any) string {
	if r.unauth == nil {
		return ""
	}
	return r.unauth(section)
}

// Build builds the channel from its section.
func (r Registration) Build(section any, env Env) (bridge.Channel, error) {
	ch, err := r.build(section, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	if ch == nil {
		return nil, fmt.Errorf("%s: %w", r.Name, errNilChannel)
	}
	return ch, nil
}

var errNilChannel = errors.New("the constructor returned no channel")

// Router is a channel that serves HTTP routes.
type Router interface {
	// Routes mounts the channel's routes on mux (Go 1.22 patterns).
	Routes(mux *http.ServeMux)
}

// Runner is a channel with background work. Run runs until ctx ends and then returns nil; an
// error it returns earlier stops the bridge.
type Runner interface {
	Run(ctx context.Context) error
}

// Drainer is a channel that holds long-lived connections (websocket streams). Shutdown runs
// while the HTTP server shuts down: it ends them so that clients reconnect elsewhere, within ctx.
type Drainer interface {
	Shutdown(ctx context.Context) error
}

// Closer is a channel that holds resources. Close runs once, after the HTTP server has shut
// down and the runners have returned, in the reverse of the registry's order.
type Closer interface {
	Close(ctx context.Context) error
}

// Readier is a channel that can say whether it can take traffic (GET /healthz).
type Readier interface {
	Ready(ctx context.Context) error
}

// Dependent is a channel that cannot take traffic unless outside services answer: a contact
// center's API, the token endpoint of a bot's credentials. GET /readyz checks that each is
// reachable (an HTTP answer below 500 within a short timeout), caching the result.
type Dependent interface {
	Dependencies() []Dependency
}

// Dependency is an outside service a channel needs.
type Dependency struct {
	// Name names the check in /readyz's answer: fixed per channel ("dynamics",
	// "omnichannel_token"), never a URL, which may carry a secret in its query.
	Name string
	// URL is where the check sends a GET: any answer below 500 means the service is reachable.
	URL string
}

// Describer is a channel with something to say in the start-up banner.
type Describer interface {
	Describe() Banner
}

// Banner is what a channel says about itself at start-up.
type Banner struct {
	// Pages are web pages people open: printed first.
	Pages []Line
	// Endpoints are where programs reach the channel.
	Endpoints []Line
	// Notes are printed last, as they are (each a line, or lines, of its own).
	Notes []string
}

// Line is one "Label: value" line of the banner.
type Line struct {
	Label, Value string
}
