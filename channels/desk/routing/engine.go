package routing

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Errors returned by the Engine. Each is wrapped with the names involved; test with errors.Is.
var (
	// ErrUnknownConversation: the engine does not hold this conversation (never routed, or ended).
	ErrUnknownConversation = errors.New("routing: unknown conversation")
	// ErrConversationExists: Route was called twice for the same conversation.
	ErrConversationExists = errors.New("routing: conversation already routed")
	// ErrUnknownWorkstream, ErrUnknownQueue, ErrUnknownAgent, ErrUnknownBot: a name the
	// configuration does not define.
	ErrUnknownWorkstream = errors.New("routing: unknown workstream")
	ErrUnknownQueue      = errors.New("routing: unknown queue")
	ErrUnknownAgent      = errors.New("routing: unknown agent")
	ErrUnknownBot        = errors.New("routing: unknown bot")
	// ErrInvalidPresence: not one of the five base presences.
	ErrInvalidPresence = errors.New("routing: invalid presence")
	// ErrNotWithBot: Escalate on a conversation no bot holds.
	ErrNotWithBot = errors.New("routing: conversation is not with a bot")
	// ErrNoOffer: Accept or Decline by an agent the conversation is not offered to.
	ErrNoOffer = errors.New("routing: conversation is not offered to this agent")
	// ErrNotAssigned: Release by an agent who does not hold the conversation.
	ErrNotAssigned = errors.New("routing: conversation is not assigned to this agent")
	// ErrInvalidStage: a transfer of a conversation in a stage that cannot be transferred.
	ErrInvalidStage = errors.New("routing: conversation cannot be transferred in its current stage")
)

// Stage is where a conversation is in routing.
type Stage string

// The stages. A conversation that ends leaves the engine.
const (
	StageBot      Stage = "bot"      // a bot holds it
	StageWaiting  Stage = "waiting"  // in a queue, no agent yet
	StageOffered  Stage = "offered"  // pushed to an agent who has not accepted yet
	StageAssigned Stage = "assigned" // an agent accepted it
)

// WorkItem is a new conversation to route.
type WorkItem struct {
	ConversationID string
	// Workstream names the workstream; empty means the first one in the configuration.
	Workstream string
	// Context holds the context variables known at the start (pre-chat answers, custom
	// context). Declared variables are converted to their declared types.
	Context map[string]Value
	// ExcludeBots are bots that must not get the conversation, such as a bot outside the desk
	// that has already escalated it. Routing never gives a conversation back to a bot it
	// escalated from.
	ExcludeBots []string
}

// Decision says where a conversation went.
type Decision struct {
	ConversationID string
	Workstream     string
	Stage          Stage  // where it is now; "" when it ended (Ended)
	Bot            string // the bot holding it (StageBot)
	Queue          string // its queue (waiting, offered or assigned)
	Rule           string // the route-to-queue rule that chose the queue
	Fallback       bool   // no rule matched: the workstream's fallback queue
	Agent          string // the agent it is offered or assigned to
	Position       int    // 1-based position in the queue while waiting
	Ended          bool   // an overflow action ended it
	Events         []Event
}

// Engine routes conversations: it holds agents' presence and load, queues and their waiting
// conversations, and produces events for the caller to act on. It does no I/O and never blocks;
// time comes from the clock given to New. All methods are safe for concurrent use: one mutex
// serialises them, so each call sees and leaves a consistent state.
type Engine struct {
	mu     sync.Mutex
	cfg    *Config
	clock  func() time.Time
	ws     map[string]*wsInfo
	queues map[string]*Queue
	agents map[string]*Agent
	bots   map[string]*Bot
	prof   map[string]*CapacityProfile
	msgs   map[Trigger]string

	seq   uint64
	convs map[string]*ConversationState
	pres  map[string]*AgentState
	qs    map[string]*QueueState
	load  map[string]*agentLoad
}

type wsInfo struct {
	*Workstream
	vars    map[string]Type
	allowed map[Presence]bool
}

// agentLoad is the capacity an agent's offered and assigned conversations hold.
type agentLoad struct {
	units    int
	profiles map[string]int
	convs    int
}

// New returns an engine for cfg, which it validates, filling in defaults (a *ConfigError when
// invalid); cfg must not change afterwards. clock gives the time; nil means time.Now. Agents
// start in the presence their configuration gives.
func New(cfg *Config, clock func() time.Time) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clock == nil {
		clock = time.Now
	}
	e := &Engine{cfg: cfg, clock: clock, ws: map[string]*wsInfo{}, queues: map[string]*Queue{},
		agents: map[string]*Agent{}, bots: map[string]*Bot{}, prof: map[string]*CapacityProfile{},
		msgs: DefaultMessages()}
	for i := range cfg.Workstreams {
		w := &cfg.Workstreams[i]
		info := &wsInfo{Workstream: w, vars: map[string]Type{}, allowed: map[Presence]bool{}}
		for _, v := range w.Variables {
			info.vars[v.Name] = v.Type
		}
		for _, p := range w.AllowedPresences {
			info.allowed[p] = true
		}
		e.ws[w.Name] = info
	}
	for i := range cfg.Queues {
		e.queues[cfg.Queues[i].Name] = &cfg.Queues[i]
	}
	for i := range cfg.Agents {
		e.agents[cfg.Agents[i].ID] = &cfg.Agents[i]
	}
	for i := range cfg.Bots {
		e.bots[cfg.Bots[i].ID] = &cfg.Bots[i]
	}
	for i := range cfg.CapacityProfiles {
		e.prof[cfg.CapacityProfiles[i].Name] = &cfg.CapacityProfiles[i]
	}
	for t, text := range cfg.Messages {
		e.msgs[t] = text
	}
	e.reset()
	return e, nil
}

// reset empties the runtime state: no conversations, configured presences.
func (e *Engine) reset() {
	e.seq = 0
	e.convs = map[string]*ConversationState{}
	e.pres = map[string]*AgentState{}
	e.qs = map[string]*QueueState{}
	e.load = map[string]*agentLoad{}
	for _, a := range e.cfg.Agents {
		e.pres[a.ID] = &AgentState{ID: a.ID, Presence: a.Presence, Manual: true}
		if e.cfg.DeskGrace > 0 { // no desk yet: Offline until one connects
			e.pres[a.ID] = &AgentState{ID: a.ID, Presence: Offline, SignedOut: true}
		}
		e.load[a.ID] = &agentLoad{profiles: map[string]int{}}
	}
	for _, q := range e.cfg.Queues {
		e.qs[q.Name] = &QueueState{Name: q.Name, LastAssigned: map[string]uint64{}}
	}
}

// Config returns the engine's configuration, which must not be changed.
func (e *Engine) Config() *Config { return e.cfg }

// Route routes a new conversation: to the workstream's bot when it has one (and the bot is not
// excluded), otherwise through the route-to-queue rules, with the queue's pre-queue overflow
// check, and on to an agent when one can take it now.
func (e *Engine) Route(item WorkItem) (Decision, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if item.ConversationID == "" {
		return Decision{}, fmt.Errorf("%w: empty conversation id", ErrUnknownConversation)
	}
	if _, dup := e.convs[item.ConversationID]; dup {
		return Decision{}, fmt.Errorf("%w: %s", ErrConversationExists, item.ConversationID)
	}
	name := item.Workstream
	if name == "" {
		name = e.cfg.Workstreams[0].Name
	}
	ws := e.ws[name]
	if ws == nil {
		return Decision{}, fmt.Errorf("%w: %q", ErrUnknownWorkstream, name)
	}
	e.seq++
	c := &ConversationState{ID: item.ConversationID, Workstream: name, Context: map[string]Value{}, Seq: e.seq}
	coerceContext(ws.vars, item.Context, c.Context)
	for _, b := range item.ExcludeBots {
		if b != "" && !slices.Contains(c.ExcludedBots, b) {
			c.ExcludedBots = append(c.ExcludedBots, b)
		}
	}
	e.convs[c.ID] = c
	o := e.newOp()
	d := Decision{}
	if ws.Bot != "" && !slices.Contains(c.ExcludedBots, ws.Bot) {
		o.toBot(c, ws.Bot, "", "")
	} else {
		d.Rule, d.Fallback = o.routeToQueue(c, true)
	}
	o.finish()
	return o.decision(c, d), nil
}

// Escalate hands a conversation from its bot to people: the context variables are updated (a
// zero Value removes one), the route-to-queue rules run again, and the conversation never goes
// back to that bot through routing. The pre-queue overflow check runs after the first
// escalation only, as in Omnichannel.
func (e *Engine) Escalate(conversationID string, context map[string]Value) (Decision, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.conv(conversationID)
	if err != nil {
		return Decision{}, err
	}
	if c.Stage != StageBot {
		return Decision{}, fmt.Errorf("%w: %s is %s", ErrNotWithBot, c.ID, c.Stage)
	}
	o := e.newOp()
	bot := c.Bot
	if !slices.Contains(c.ExcludedBots, bot) {
		c.ExcludedBots = append(c.ExcludedBots, bot)
	}
	coerceContext(e.ws[c.Workstream].vars, context, c.Context)
	c.Bot = ""
	c.Escalations++
	o.emit(Event{Kind: EventEscalated, ConversationID: c.ID, Bot: bot, Queue: c.Queue})
	d := Decision{}
	d.Rule, d.Fallback = o.routeToQueue(c, c.Escalations == 1)
	o.finish()
	return o.decision(c, d), nil
}

// Accept records that the agent accepted the offered conversation; the customer is told the
// agent joined. Accepting a conversation the agent already holds does nothing.
func (e *Engine) Accept(agent, conversationID string) ([]Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.agentConv(agent, conversationID)
	if err != nil {
		return nil, err
	}
	if c.Stage == StageAssigned && c.Agent == agent {
		return nil, nil
	}
	if c.Stage != StageOffered || c.Agent != agent {
		return nil, fmt.Errorf("%w: %s to %s", ErrNoOffer, c.ID, agent)
	}
	o := e.newOp()
	o.accept(c)
	o.finish()
	return o.events, nil
}

// Decline records that the agent rejected the offer: the conversation goes back to its place in
// the queue and to the next agent who can take it. The agent is not offered it again before the
// workstream's ReofferAfterDecline.
func (e *Engine) Decline(agent, conversationID string) ([]Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.agentConv(agent, conversationID)
	if err != nil {
		return nil, err
	}
	if c.Stage != StageOffered || c.Agent != agent {
		return nil, fmt.Errorf("%w: %s to %s", ErrNoOffer, c.ID, agent)
	}
	o := e.newOp()
	o.unoffer(c, EventDeclined, true)
	o.finish()
	return o.events, nil
}

// Release ends the agent's conversation ("Agent ended conversation"): the customer is told, the
// agent's capacity is freed, and waiting work may be assigned. The conversation leaves the
// engine.
func (e *Engine) Release(agent, conversationID string) ([]Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.agentConv(agent, conversationID)
	if err != nil {
		return nil, err
	}
	if c.Stage != StageAssigned || c.Agent != agent {
		return nil, fmt.Errorf("%w: %s by %s", ErrNotAssigned, c.ID, agent)
	}
	o := e.newOp()
	o.say(c, TriggerAgentEnded, "")
	o.free(c, ReasonAgentEnded)
	delete(e.convs, c.ID)
	o.finish()
	return o.events, nil
}

// End removes a conversation that ended elsewhere (the customer left, the bot ended it,
// inactivity), wherever it is. An agent holding it gets the capacity back. No message is sent.
func (e *Engine) End(conversationID string) ([]Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.conv(conversationID)
	if err != nil {
		return nil, err
	}
	o := e.newOp()
	if c.Stage == StageOffered || c.Stage == StageAssigned {
		o.free(c, ReasonEnded)
	}
	delete(e.convs, c.ID)
	o.finish()
	return o.events, nil
}

// TransferToQueue moves an assigned (or still waiting) conversation to a queue. The agent's
// capacity is freed and that agent is not offered the conversation again from this queue. The
// queue's waiting-time overflow applies; its pre-queue overflow does not, as in Omnichannel.
func (e *Engine) TransferToQueue(conversationID, queue string) (Decision, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.conv(conversationID)
	if err != nil {
		return Decision{}, err
	}
	if e.queues[queue] == nil {
		return Decision{}, fmt.Errorf("%w: %q", ErrUnknownQueue, queue)
	}
	if c.Stage != StageAssigned && c.Stage != StageWaiting {
		return Decision{}, fmt.Errorf("%w: %s is %s", ErrInvalidStage, c.ID, c.Stage)
	}
	o := e.newOp()
	from, fromQueue := c.Agent, c.Queue
	if c.Stage == StageAssigned {
		o.free(c, ReasonTransfer)
		c.Transfers++
	}
	c.TransferredFrom = from
	o.emit(Event{Kind: EventTransferred, ConversationID: c.ID, FromQueue: fromQueue, Queue: queue, Agent: from, Reason: ReasonTransfer})
	o.enqueue(c, queue)
	o.finish()
	return o.decision(c, Decision{}), nil
}

// TransferToBot hands an assigned (or waiting) conversation to a bot. In Omnichannel an agent
// does this by transferring to a queue the bot is a member of (TransferToQueue does that here
// too, and there a bot the conversation escalated from is never picked). TransferToBot is the
// direct form bfbridge adds for "return to bot": it may hand the conversation back to the bot
// that escalated it, because an agent chose to; that bot is excluded again if it escalates again.
func (e *Engine) TransferToBot(conversationID, bot string) (Decision, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.conv(conversationID)
	if err != nil {
		return Decision{}, err
	}
	if e.bots[bot] == nil {
		return Decision{}, fmt.Errorf("%w: %q", ErrUnknownBot, bot)
	}
	if c.Stage != StageAssigned && c.Stage != StageWaiting {
		return Decision{}, fmt.Errorf("%w: %s is %s", ErrInvalidStage, c.ID, c.Stage)
	}
	o := e.newOp()
	from := c.Agent
	if c.Stage == StageAssigned {
		o.free(c, ReasonTransfer)
		c.Transfers++
	}
	c.ExcludedBots = slices.DeleteFunc(c.ExcludedBots, func(b string) bool { return b == bot })
	o.toBot(c, bot, from, ReasonTransfer)
	o.finish()
	return o.decision(c, Decision{}), nil
}

// SetPresence sets an agent's presence by hand. Offers pending for workstreams that do not
// allow the new presence are withdrawn and go to other agents; going Offline tells the
// customers of the agent's conversations that the agent disconnected (the conversations stay
// assigned); a presence that allows work assigns waiting conversations, oldest first.
func (e *Engine) SetPresence(agent string, p Presence) ([]Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.pres[agent]
	if st == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAgent, agent)
	}
	if !p.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrInvalidPresence, p)
	}
	o := e.newOp()
	st.SignedOut = false
	o.setPresence(agent, p)
	o.finish()
	return o.events, nil
}

// setPresence sets an agent's presence as chosen (Manual), withdraws the offers the new
// presence does not allow, and tells the customers of the agent's conversations when the agent
// goes Offline.
func (o *op) setPresence(agent string, p Presence) {
	e, st := o.e, o.e.pres[agent]
	st.Manual = true
	if st.Presence != p {
		st.Presence = p
		o.emit(Event{Kind: EventPresence, Agent: agent, Presence: p})
	}
	for _, c := range e.sortedConvs() {
		if c.Agent != agent {
			continue
		}
		switch {
		case c.Stage == StageOffered && !e.ws[c.Workstream].allowed[p]:
			o.unoffer(c, EventOfferWithdrawn, false)
		case c.Stage == StageAssigned && p == Offline:
			o.say(c, TriggerAgentDisconnected, "")
		}
	}
}

// Conversation returns a copy of a conversation's routing state.
func (e *Engine) Conversation(conversationID string) (ConversationState, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.convs[conversationID]
	if c == nil {
		return ConversationState{}, false
	}
	return c.clone(), true
}

func (e *Engine) conv(id string) (*ConversationState, error) {
	c := e.convs[id]
	if c == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownConversation, id)
	}
	return c, nil
}

func (e *Engine) agentConv(agent, id string) (*ConversationState, error) {
	if e.agents[agent] == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAgent, agent)
	}
	return e.conv(id)
}

// sortedConvs returns the conversations in the order they arrived, for deterministic results.
func (e *Engine) sortedConvs() []*ConversationState {
	out := make([]*ConversationState, 0, len(e.convs))
	for _, c := range e.convs {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *ConversationState) int { return cmpUint(a.Seq, b.Seq) })
	return out
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
