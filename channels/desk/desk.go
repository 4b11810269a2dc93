// Package desk is the sandbox contact center: the unified routing engine (routing/), an agent
// desk and a supervisor view served by the bridge, a customer chat page, and the scripted
// sandbox bot. It is the escalation target of the widget-first topology and what
// `go run ./cmd/bridge` shows with no configuration. Several bridge instances on one shared
// store (Redis) run one desk: each routing decision is made once across them, and an agent's
// page on any instance follows its conversations (shared.go).
package desk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/desk/routing"
)

// ChannelName is the name the desk registers with the Hub.
const ChannelName = "desk"

// TokenIssuer issues Direct Line tokens for the customer page (channels/directline.Server).
type TokenIssuer interface {
	IssueToken(user string) (conversationID, token string, expiresIn int, err error)
}

// Config configures the desk.
type Config struct {
	// Routing is the routing configuration. Default: routing.DefaultConfig().
	Routing *routing.Config
	// TickInterval is how often waiting times and offers are checked. Default: 1s.
	TickInterval time.Duration
	// Clock gives the time to the routing engine. Default: time.Now.
	Clock func() time.Time
	// Leases, when the store is shared by several bridge processes, makes each routing
	// decision once across them (see shared.go). Nil: this process is the only one.
	Leases bridge.Leaser
}

// Desk is the sandbox contact center as a bridge channel: an Escalator that routes escalated
// conversations to agents, who chat with customers from the desk page.
type Desk struct {
	hub    Hub
	engine *routing.Engine
	tokens TokenIssuer
	log    zerolog.Logger

	mu    sync.Mutex
	convs map[string]*convInfo // conversation id -> what the desk knows beyond routing
	socks map[string]map[*agentSocket]struct{}

	tasks  chan task
	cancel context.CancelFunc
	done   chan struct{}

	leases   bridge.Leaser         // nil: one process
	decideMu sync.Mutex            // serializes decisions with several processes (shared.go)
	watches  map[string]*convWatch // with several processes: the logs pushed to pages (d.mu)

	// What persist last wrote (see persist.go), the worker's only (with several processes:
	// decideMu's): each task's JSON by conversation id, and the shared routing state's.
	written       map[string]string
	writtenShared string
}

// convInfo is what the desk keeps per conversation besides its routing state.
type convInfo struct {
	Customer string `json:"customer"`
	Note     string `json:"note,omitempty"`
	Dialect  string `json:"dialect,omitempty"`
}

// task is work for the desk's worker: routing events to act on, then an optional step.
type task struct {
	events []routing.Event
	then   func(ctx context.Context) error
}

var (
	_ bridge.Channel   = (*Desk)(nil)
	_ bridge.Escalator = (*Desk)(nil)
)

// Hub is what the desk needs of the bridge's Hub: it hands the agents' activities over
// (Receiver), makes the handoff transitions (ContactCenter), reads transcripts (Logs), and keeps
// its routing state (ChannelState). *bridge.Hub implements it.
type Hub interface {
	bridge.Receiver
	bridge.ContactCenter
	bridge.Logs
	bridge.ChannelState
}

var _ Hub = (*bridge.Hub)(nil)

// New returns the desk, with the routing state it had before a restart when hub's values have
// it. The caller registers it with the Hub and its routes with a mux, and calls Close at
// shutdown.
func New(hub Hub, tokens TokenIssuer, cfg Config, log zerolog.Logger) (*Desk, error) {
	if cfg.Routing == nil {
		cfg.Routing = routing.DefaultConfig()
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	engine, err := routing.New(cfg.Routing, cfg.Clock)
	if err != nil {
		return nil, err
	}
	d := &Desk{
		hub: hub, engine: engine, tokens: tokens, log: log.With().Str("channel", ChannelName).Logger(),
		convs: map[string]*convInfo{}, socks: map[string]map[*agentSocket]struct{}{}, tasks: make(chan task, 1024), done: make(chan struct{}),
		written: map[string]string{}, leases: cfg.Leases, watches: map[string]*convWatch{},
	}
	ctx := context.Background()
	if err := d.restore(ctx); err != nil {
		return nil, err
	}
	ctx, d.cancel = context.WithCancel(ctx)
	go d.work(ctx, cfg.TickInterval)
	var events []routing.Event
	if err := d.decide(ctx, func() error { events = engine.Tick(); return nil }); err != nil {
		d.log.Warn().Err(err).Msg("routing clock not checked at start")
	}
	d.enqueue(task{events: events}) // what came due while the bridge was down
	return d, nil
}

// Close stops the worker after the tasks already queued.
func (d *Desk) Close() {
	d.cancel()
	<-d.done
}

// Name implements bridge.Channel.
func (d *Desk) Name() string { return ChannelName }

// Escalate implements bridge.Escalator: the conversation enters routing (its workstream's bot
// first, as in Omnichannel), then escalates with the context variables, which reruns routing
// and never gives it back to the same bot.
func (d *Desk) Escalate(ctx context.Context, c *bridge.Conversation, e *handoff.Escalation) (bridge.Leg, bridge.State, error) {
	vars := toRouting(c.Context)
	for k, v := range toRouting(e.Context) {
		vars[k] = v
	}
	name := d.customerName(ctx, c)
	var events []routing.Event
	var dec routing.Decision
	err := d.decide(ctx, func() error {
		events = nil
		if _, ok := d.engine.Conversation(c.ID); !ok {
			dec, err := d.engine.Route(routing.WorkItem{ConversationID: c.ID, Context: vars})
			if err != nil {
				return fmt.Errorf("desk: route: %w", err)
			}
			events = append(events, dec.Events...)
		}
		var err error
		if dec, err = d.engine.Escalate(c.ID, vars); err != nil {
			return fmt.Errorf("desk: escalate: %w", err)
		}
		events = append(events, dec.Events...)
		d.mu.Lock()
		d.convs[c.ID] = &convInfo{Customer: name, Note: e.AgentNote, Dialect: string(e.Source.Dialect)}
		d.mu.Unlock()
		return nil
	})
	if err != nil {
		return bridge.Leg{}, "", err
	}
	d.log.Info().Str("conv_id", c.ID).Str("queue", dec.Queue).Bool("fallback", dec.Fallback).Msg("conversation routed")
	d.enqueue(task{events: events}) // acted on after the Hub has stored the escalation
	return d.leg(c.ID), bridge.StateQueued, nil
}

// Send implements bridge.Channel: what the customer says reaches the agents who see the
// conversation; the customer's end leaves routing.
func (d *Desk) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	if a.Type == activity.TypeEndOfConversation {
		var events []routing.Event
		err := d.decide(ctx, func() error {
			var err error
			events, err = d.engine.End(to.ConversationID)
			if errors.Is(err, routing.ErrUnknownConversation) {
				return nil
			}
			return err
		})
		var busy *busyError
		if errors.As(err, &busy) { // routing busy or the store failing: the outbox tries again
			return "", &bridge.DeliveryError{Leg: to.Key(), Retryable: true, Err: err}
		}
		if err != nil {
			return "", err
		}
		d.enqueue(task{events: events, then: func(context.Context) error {
			d.broadcastRemoved(to.ConversationID)
			return nil
		}})
		return a.ID, nil
	}
	if e, ok := entryOf(bridge.Record{From: bridge.RoleCustomer, Activity: a}); ok {
		d.pushEntry(to.ConversationID, e)
	}
	return a.ID, nil
}

// leg is the desk's leg of a conversation.
func (d *Desk) leg(convID string) bridge.Leg {
	return bridge.Leg{Channel: ChannelName, ConversationID: convID, Bot: systemAccount}
}

var systemAccount = activity.ChannelAccount{ID: "contact-center", Name: "Contact center"}

// agentAccount is how an agent appears to the customer.
func (d *Desk) agentAccount(agentID string) activity.ChannelAccount {
	for _, a := range d.engine.Config().Agents {
		if a.ID == agentID {
			return activity.ChannelAccount{ID: "agent:" + a.ID, Name: a.Name}
		}
	}
	return activity.ChannelAccount{ID: "agent:" + agentID, Name: agentID}
}

// say sends the customer a message from the contact center (role "system") or an agent.
func (d *Desk) say(ctx context.Context, convID string, from activity.ChannelAccount, role, text string) error {
	a := &activity.Activity{Type: activity.TypeMessage, Text: text, From: &from, Timestamp: activity.NewTime(time.Now())}
	if err := a.SetChannelDataField("bfbridgeRole", role); err != nil {
		return err
	}
	leg := d.leg(convID)
	if _, err := d.hub.Receive(ctx, leg, a, ""); err != nil {
		return err
	}
	if e, ok := entryOf(bridge.Record{From: bridge.RoleAgent, Activity: a}); ok {
		d.pushEntry(convID, e)
	}
	return nil
}

func (d *Desk) enqueue(t task) {
	select {
	case d.tasks <- t:
	case <-d.done:
	}
}

// work runs tasks in order, and the routing engine's clock checks, until ctx ends.
func (d *Desk) work(ctx context.Context, tick time.Duration) {
	defer close(d.done)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			for { // finish what was queued
				select {
				case t := <-d.tasks:
					d.run(context.Background(), t)
				default:
					return
				}
			}
		case t := <-d.tasks:
			d.run(ctx, t)
		case <-ticker.C:
			var events []routing.Event
			var changed bool
			open := d.openDesks() // before the decision: d.mu is not taken under it but as a leaf
			if err := d.decide(ctx, func() error {
				events, changed = d.engine.DesksOpen(open)
				events = append(events, d.engine.Tick()...)
				return nil
			}); err != nil && ctx.Err() == nil {
				d.log.Warn().Err(err).Msg("routing clock not checked")
			}
			if len(events) > 0 || changed {
				d.run(ctx, task{events: events})
			}
			if d.leases != nil {
				d.syncWatches()
			}
		}
	}
}

// run acts on a task's events, runs its step, and stores the desk's state.
func (d *Desk) run(ctx context.Context, t task) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, ev := range t.events {
		if err := d.act(ctx, ev); err != nil {
			d.log.Warn().Err(err).Str("conv_id", ev.ConversationID).Str("event", string(ev.Kind)).Msg("routing event not carried out")
		}
	}
	if t.then != nil {
		if err := t.then(ctx); err != nil {
			d.log.Warn().Err(err).Msg("desk step failed")
		}
	}
	if d.leases == nil { // with several processes, each decision stored itself
		d.persist(ctx)
	}
}

// act carries out one routing event.
func (d *Desk) act(ctx context.Context, ev routing.Event) error {
	switch ev.Kind {
	case routing.EventMessage:
		return d.say(ctx, ev.ConversationID, systemAccount, "system", ev.Text)
	case routing.EventOffered, routing.EventTransferred, routing.EventQueued:
		d.refresh(ev.ConversationID)
	case routing.EventAccepted:
		leg := d.leg(ev.ConversationID)
		leg.Bot = d.agentAccount(ev.Agent)
		err := d.hub.Accept(ctx, ev.ConversationID, leg)
		d.refresh(ev.ConversationID)
		return err
	case routing.EventDeclined, routing.EventOfferExpired, routing.EventOfferWithdrawn, routing.EventReleased:
		if ev.Agent != "" {
			d.sendTo(ev.Agent, deskMsg{Type: "removed", ConversationID: ev.ConversationID})
		}
		d.refresh(ev.ConversationID)
	case routing.EventEnded:
		d.broadcastRemoved(ev.ConversationID)
		return d.hub.End(ctx, ev.ConversationID, bridge.RoleAgent, handoff.End{Reason: "overflow", Text: "closed by the contact center"})
	case routing.EventPresence:
		d.refreshAgent(ev.Agent)
	}
	return nil
}

// toRouting converts context variables to the routing engine's values. An array of plain
// values (Copilot's va_Topics, va_Phrases) becomes one string, its items joined with ", ", as
// the mapping table says for contact centers that take only scalars (activity/handoff/MAPPING.md);
// objects and nulls are left out.
func toRouting(vars handoff.Variables) map[string]routing.Value {
	out := make(map[string]routing.Value, len(vars))
	for k, v := range vars {
		switch v.Kind() {
		case handoff.KindJSON:
			if s, ok := joinArray(v.Raw()); ok {
				out[k] = routing.String(s)
			}
		case handoff.KindString:
			s, _ := v.Str()
			out[k] = routing.String(s)
		case handoff.KindInteger:
			i, _ := v.Int()
			out[k] = routing.Integer(i)
		case handoff.KindNumber:
			f, _ := v.Float()
			out[k] = routing.Number(f)
		case handoff.KindBoolean:
			b, _ := v.Bool()
			out[k] = routing.Boolean(b)
		}
	}
	return out
}

// joinArray joins a JSON array of strings, numbers and booleans with ", ".
func joinArray(raw json.RawMessage) (string, bool) {
	var items []any
	if json.Unmarshal(raw, &items) != nil {
		return "", false
	}
	parts := make([]string, 0, len(items))
	for _, it := range items {
		switch it := it.(type) {
		case string:
			parts = append(parts, it)
		case float64, bool:
			b, _ := json.Marshal(it)
			parts = append(parts, string(b))
		default:
			return "", false
		}
	}
	return strings.Join(parts, ", "), true
}

// Sessions is the number of agents' desk websockets open now (the bridge's open sessions
// gauge).
func (d *Desk) Sessions() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, s := range d.socks {
		n += len(s)
	}
	return n
}
