package routing

import (
	"math"
	"slices"
	"time"
)

// op is one engine operation in progress: the time it runs at, the events it produced, and the
// conversations that entered a queue (which are told about the queue once assignment has run).
type op struct {
	e       *Engine
	now     time.Time
	events  []Event
	entered []*ConversationState
}

func (e *Engine) newOp() *op { return &op{e: e, now: e.clock()} }

func (o *op) emit(ev Event) {
	ev.At = o.now
	o.events = append(o.events, ev)
}

// say renders an automated message for the conversation's customer; an empty text (the
// message turned off) sends nothing. override replaces the configured text when set.
func (o *op) say(c *ConversationState, t Trigger, override string) {
	text := o.e.msgs[t]
	if override != "" {
		text = override
	}
	if text == "" {
		return
	}
	s := slugs{ctx: c.Context, queueName: c.Queue, position: o.e.position(c)}
	if a := o.e.agents[c.Agent]; a != nil {
		s.agentName = a.Name
	}
	s.averageWait, _ = o.e.averageWait(c.Queue, o.now)
	o.emit(Event{Kind: EventMessage, ConversationID: c.ID, Queue: c.Queue, Agent: c.Agent, Trigger: t, Text: render(text, s)})
}

// finish runs assignment, then tells the customers who entered a queue and still wait where
// they stand.
func (o *op) finish() {
	o.dispatch()
	seen := map[string]bool{}
	for _, c := range o.entered {
		if seen[c.ID] || o.e.convs[c.ID] != c || c.Stage != StageWaiting {
			continue
		}
		seen[c.ID] = true
		o.announce(c)
	}
}

// decision describes where c is after the operation.
func (o *op) decision(c *ConversationState, d Decision) Decision {
	d.ConversationID, d.Workstream, d.Events = c.ID, c.Workstream, o.events
	d.Queue = c.Queue
	if o.e.convs[c.ID] != c {
		d.Ended = true
		return d
	}
	d.Stage, d.Bot, d.Agent, d.Position = c.Stage, c.Bot, c.Agent, o.e.position(c)
	return d
}

// toBot gives the conversation to a bot, which takes it at once: bots do not accept offers and
// their capacity is never reduced.
func (o *op) toBot(c *ConversationState, bot, fromAgent string, reason Reason) {
	c.Stage, c.Bot, c.Agent, c.TransferredFrom = StageBot, bot, "", ""
	c.OfferedAt, c.AcceptedAt = time.Time{}, time.Time{}
	o.emit(Event{Kind: EventBotAssigned, ConversationID: c.ID, Bot: bot, Agent: fromAgent, Queue: c.Queue, Reason: reason})
}

// routeToQueue runs the workstream's route-to-queue rules. Rules are evaluated in order and the
// first match wins; with checkOverflow, a matched queue over its work-item limit is skipped for
// the next matching rule's queue, and when every matched queue overflows the first one's
// overflow action runs. No match sends the conversation to the fallback queue, whose overflow
// settings are ignored.
func (o *op) routeToQueue(c *ConversationState, checkOverflow bool) (rule string, fallback bool) {
	ws := o.e.ws[c.Workstream]
	var matched []*Rule
	for i := range ws.Rules {
		if ws.Rules[i].When.Match(c.Context) {
			matched = append(matched, &ws.Rules[i])
		}
	}
	if len(matched) == 0 {
		o.enqueue(c, ws.FallbackQueue)
		return "", true
	}
	if !checkOverflow {
		o.enqueue(c, matched[0].Queue)
		return matched[0].Name, false
	}
	for _, r := range matched {
		if !o.e.overLimit(r.Queue) {
			o.enqueue(c, r.Queue)
			return r.Name, false
		}
	}
	first := matched[0]
	o.overflow(c, first.Queue, o.e.queues[first.Queue].Overflow.WorkItemLimit, ReasonOverflowWorkItemLimit)
	return first.Name, false
}

// overLimit reports whether a queue's work-item limit is reached.
func (e *Engine) overLimit(queue string) bool {
	r := e.queues[queue].Overflow.WorkItemLimit
	return r != nil && e.waitingCount(queue) >= r.Limit
}

// overflow runs an overflow action for a conversation that overflows queue. A transfer enters
// the target queue without a further pre-queue check.
func (o *op) overflow(c *ConversationState, queue string, r *OverflowRule, reason Reason) {
	switch r.Action {
	case OverflowTransfer:
		o.emit(Event{Kind: EventTransferred, ConversationID: c.ID, FromQueue: queue, Queue: r.Queue, Reason: reason})
		o.enqueue(c, r.Queue)
	case OverflowEnd:
		c.Queue = queue
		o.say(c, TriggerOverflowEnd, r.Message)
		o.emit(Event{Kind: EventEnded, ConversationID: c.ID, Queue: queue, Reason: reason})
		delete(o.e.convs, c.ID)
	default: // assign anyway
		o.enqueue(c, queue)
	}
}

// enqueue puts the conversation in a queue to wait. It keeps its original arrival time, so a
// transferred customer who has waited longer is still served first.
func (o *op) enqueue(c *ConversationState, queue string) {
	c.Stage, c.Queue, c.Agent, c.Bot = StageWaiting, queue, "", ""
	c.EnqueuedAt, c.OfferedAt, c.AcceptedAt = o.now, time.Time{}, time.Time{}
	if c.ArrivedAt.IsZero() {
		c.ArrivedAt = o.now
	}
	c.LastPosition, c.LastPositionAt = 0, time.Time{}
	o.emit(Event{Kind: EventQueued, ConversationID: c.ID, Queue: queue})
	o.say(c, TriggerWaitingForAgent, "")
	o.entered = append(o.entered, c)
}

// announce tells a customer who just entered a queue and still waits: nobody staffs the queue,
// their position, the average wait.
func (o *op) announce(c *ConversationState) {
	q, ws := o.e.queues[c.Queue], o.e.ws[c.Workstream]
	staffed := len(q.Agents) > 0
	for _, b := range q.Bots {
		staffed = staffed || !slices.Contains(c.ExcludedBots, b)
	}
	if !staffed {
		o.say(c, TriggerAgentUnavailable, "")
	}
	if ws.ShowQueuePosition {
		o.sayPosition(c)
	}
	if ws.ShowAverageWaitTime {
		if avg, ok := o.e.averageWait(c.Queue, o.now); ok && avg > time.Minute {
			o.say(c, TriggerAverageWaitTime, "")
		}
	}
}

func (o *op) sayPosition(c *ConversationState) {
	p := o.e.position(c)
	if p == 1 {
		o.say(c, TriggerNextInLine, "")
	} else {
		o.say(c, TriggerQueuePosition, "")
	}
	c.LastPosition, c.LastPositionAt = p, o.now
}

// dispatch is one assignment cycle: waiting conversations, from the highest-priority queue and
// oldest first, each go to the best member of their queue who can take them now.
func (o *op) dispatch() {
	var waiting []*ConversationState
	for _, c := range o.e.convs {
		if c.Stage == StageWaiting {
			waiting = append(waiting, c)
		}
	}
	slices.SortFunc(waiting, func(a, b *ConversationState) int {
		if pa, pb := o.e.queues[a.Queue].Priority, o.e.queues[b.Queue].Priority; pa != pb {
			return pa - pb
		}
		return queueOrder(a, b)
	})
	for _, c := range waiting {
		o.assign(c)
	}
}

// queueOrder orders conversations first in, first out: by arrival, then by creation.
func queueOrder(a, b *ConversationState) int {
	if c := a.ArrivedAt.Compare(b.ArrivedAt); c != 0 {
		return c
	}
	return cmpUint(a.Seq, b.Seq)
}

// candidate is a queue member who can take a conversation.
type candidate struct {
	id        string
	bot       bool
	remaining int    // available capacity; bots have unlimited
	last      uint64 // sequence of the last assignment in this queue; 0 = never
	order     int    // position among the queue's members (bots, then agents)
}

// assign offers the conversation to the queue member the queue's assignment method picks.
func (o *op) assign(c *ConversationState) {
	e := o.e
	q, ws, qs := e.queues[c.Queue], e.ws[c.Workstream], e.qs[c.Queue]
	var best *candidate
	consider := func(x candidate) {
		if best == nil || better(q.Assignment, x, *best) {
			best = &x
		}
	}
	for i, b := range q.Bots {
		if !slices.Contains(c.ExcludedBots, b) {
			consider(candidate{id: b, bot: true, remaining: math.MaxInt, last: qs.LastAssigned[b], order: i})
		}
	}
	for i, a := range q.Agents {
		if o.eligible(c, ws, a) {
			consider(candidate{id: a, remaining: e.remaining(a, ws), last: qs.LastAssigned[a], order: len(q.Bots) + i})
		}
	}
	if best == nil {
		return
	}
	e.seq++
	qs.LastAssigned[best.id] = e.seq
	if best.bot {
		o.toBot(c, best.id, "", "")
		return
	}
	o.offer(c, best.id)
}

// better reports whether x beats y under the assignment method. Highest capacity orders by
// available capacity, then round robin; advanced round robin by the oldest last assignment in
// the queue, then by the order members were added.
func better(m AssignmentMethod, x, y candidate) bool {
	if m == HighestCapacity && x.remaining != y.remaining {
		return x.remaining > y.remaining
	}
	if x.last != y.last {
		return x.last < y.last
	}
	return x.order < y.order
}

// eligible reports whether an agent can be offered the conversation now: an allowed presence,
// a desk connected (with Config.DeskGrace), not the agent who transferred it, no recent decline, and capacity for it.
func (o *op) eligible(c *ConversationState, ws *wsInfo, agent string) bool {
	if st := o.e.pres[agent]; !ws.allowed[st.Presence] || !o.e.onDesk(st) || c.TransferredFrom == agent {
		return false
	}
	if t, ok := c.Declined[agent]; ok && o.now.Sub(t) < ws.ReofferAfterDecline {
		return false
	}
	return o.e.fits(agent, ws)
}

// fits reports whether one more conversation of the workstream fits the agent's capacity.
func (e *Engine) fits(agent string, ws *wsInfo) bool {
	cp := ws.Capacity
	if cp.Units > 0 {
		return e.agents[agent].Capacity-e.load[agent].units >= cp.Units
	}
	return e.remaining(agent, ws) > 0
}

// remaining is the agent's available capacity for the workstream: free units for unit-based
// capacity, free work items of the profile for profile-based capacity (0 without the profile).
func (e *Engine) remaining(agent string, ws *wsInfo) int {
	a, l := e.agents[agent], e.load[agent]
	if ws.Capacity.Units > 0 {
		return a.Capacity - l.units
	}
	limit := e.profileLimit(a, ws.Capacity.Profile)
	return limit - l.profiles[ws.Capacity.Profile]
}

// profileLimit is the agent's limit for a capacity profile: the custom limit, else the
// profile's default; 0 when the agent does not have the profile.
func (e *Engine) profileLimit(a *Agent, profile string) int {
	for _, p := range a.Profiles {
		if p.Profile == profile {
			if p.MaxUnits > 0 {
				return p.MaxUnits
			}
			return e.prof[profile].MaxUnits
		}
	}
	return 0
}

// offer pushes the conversation to an agent, holding the capacity it needs.
func (o *op) offer(c *ConversationState, agent string) {
	ws := o.e.ws[c.Workstream]
	c.Stage, c.Agent, c.OfferedAt = StageOffered, agent, o.now
	c.Units, c.Profile = ws.Capacity.Units, ws.Capacity.Profile
	o.e.hold(agent, c.Units, c.Profile, 1)
	o.emit(Event{Kind: EventOffered, ConversationID: c.ID, Queue: c.Queue, Agent: agent})
	o.say(c, TriggerAgentAssigned, "")
	o.recalcPresence(agent)
	if ws.AutoAccept {
		o.accept(c)
	}
}

// hold adds (n = 1) or removes (n = -1) a conversation's capacity from an agent's load.
func (e *Engine) hold(agent string, units int, profile string, n int) {
	l := e.load[agent]
	if l == nil {
		return
	}
	l.units += n * units
	l.convs += n
	if profile != "" {
		l.profiles[profile] += n
	}
}

// accept connects the agent: the wait is recorded for the queue's average, and the customer is
// told the agent joined (or, after a transfer, that the transfer was accepted).
func (o *op) accept(c *ConversationState) {
	c.Stage, c.AcceptedAt = StageAssigned, o.now
	o.e.qs[c.Queue].addSample(o.now.Sub(c.EnqueuedAt), o.now)
	o.emit(Event{Kind: EventAccepted, ConversationID: c.ID, Queue: c.Queue, Agent: c.Agent})
	if c.Transfers > 0 {
		o.say(c, TriggerTransferAccepted, "")
	} else {
		o.say(c, TriggerAgentJoined, "")
	}
	o.recalcPresence(c.Agent)
}

// unoffer takes an offer back: the conversation waits again in its place. penalize records a
// decline, so the agent is not offered it again before ReofferAfterDecline.
func (o *op) unoffer(c *ConversationState, kind EventKind, penalize bool) {
	agent := c.Agent
	o.e.hold(agent, c.Units, c.Profile, -1)
	c.Stage, c.Agent, c.OfferedAt, c.Units, c.Profile = StageWaiting, "", time.Time{}, 0, ""
	if penalize {
		if c.Declined == nil {
			c.Declined = map[string]time.Time{}
		}
		c.Declined[agent] = o.now
	}
	o.emit(Event{Kind: kind, ConversationID: c.ID, Queue: c.Queue, Agent: agent})
	o.recalcPresence(agent)
}

// free releases the capacity of the agent holding the conversation.
func (o *op) free(c *ConversationState, reason Reason) {
	agent := c.Agent
	o.e.hold(agent, c.Units, c.Profile, -1)
	c.Agent, c.Units, c.Profile = "", 0, ""
	o.emit(Event{Kind: EventReleased, ConversationID: c.ID, Queue: c.Queue, Agent: agent, Reason: reason})
	o.recalcPresence(agent)
}

// recalcPresence sets the presence Omnichannel computes from capacity: Available with no work,
// Busy with some, Busy-DND when the capacity is used up. It applies to agents who are
// Available or Busy (set by hand or not) and to a Busy-DND the system set; Away, Offline and a
// Busy-DND chosen by hand stay until the agent changes them.
func (o *op) recalcPresence(agent string) {
	st, l := o.e.pres[agent], o.e.load[agent]
	if st == nil || !(st.Presence == Available || st.Presence == Busy || (st.Presence == BusyDND && !st.Manual)) {
		return
	}
	p := Busy
	switch {
	case l.convs <= 0:
		p = Available
	case o.e.full(agent):
		p = BusyDND
	}
	st.Manual = false
	if p != st.Presence {
		st.Presence = p
		o.emit(Event{Kind: EventPresence, Agent: agent, Presence: p})
	}
}

// full reports whether the agent's capacity is used up: units (if the agent has any) and every
// capacity profile (if the agent has any) exhausted.
func (e *Engine) full(agent string) bool {
	a, l := e.agents[agent], e.load[agent]
	if a.Capacity <= 0 && len(a.Profiles) == 0 {
		return false
	}
	if a.Capacity > 0 && l.units < a.Capacity {
		return false
	}
	for _, p := range a.Profiles {
		if l.profiles[p.Profile] < e.profileLimit(a, p.Profile) {
			return false
		}
	}
	return true
}

// waitingCount is the number of conversations waiting in a queue.
func (e *Engine) waitingCount(queue string) int {
	n := 0
	for _, c := range e.convs {
		if c.Stage == StageWaiting && c.Queue == queue {
			n++
		}
	}
	return n
}

// position is the conversation's 1-based place among those waiting in its queue, first in
// first out; 0 when it does not wait.
func (e *Engine) position(c *ConversationState) int {
	if c.Stage != StageWaiting {
		return 0
	}
	p := 1
	for _, d := range e.convs {
		if d != c && d.Stage == StageWaiting && d.Queue == c.Queue && queueOrder(d, c) < 0 {
			p++
		}
	}
	return p
}
