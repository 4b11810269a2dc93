package desk

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/desk/routing"
)

// deskMsg is a message of the desk page's websocket protocol, both ways.
//
// Server → page: "state" (the agent, its conversations, the queues and bots to transfer to),
// "conversation" (one conversation offered, accepted or changed), "activity" (a new transcript
// entry), "removed" (a conversation left the agent), "error".
// Page → server: "presence", "accept", "decline", "send" (text), "transfer" (kind queue or bot,
// target), "end".
type deskMsg struct {
	Type           string      `json:"type"`
	Agent          *agentView  `json:"agent,omitempty"`
	Conversations  []*convView `json:"conversations,omitempty"`
	Conversation   *convView   `json:"conversation,omitempty"`
	ConversationID string      `json:"conversationId,omitempty"`
	Entry          *entry      `json:"entry,omitempty"`
	Queues         []string    `json:"queues,omitempty"`
	Bots           []string    `json:"bots,omitempty"`
	Message        string      `json:"message,omitempty"`

	Presence string `json:"presence,omitempty"`
	Text     string `json:"text,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Target   string `json:"target,omitempty"`
}

type agentView struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Presence string `json:"presence"`
	Load     int    `json:"load"`
	Capacity int    `json:"capacity"`
}

// convView is a conversation as an agent sees it.
type convView struct {
	ID         string            `json:"id"`
	State      string            `json:"state"` // offered, active
	Queue      string            `json:"queue"`
	Customer   string            `json:"customer"` // a display name, never an id (names.go)
	OfferedAt  *time.Time        `json:"offeredAt,omitempty"`
	AnswerBy   *time.Time        `json:"answerBy,omitempty"` // an offer passes on at this time: the page counts down
	Now        time.Time         `json:"now"`                // the server's clock, so the countdown ignores the page's`
	Note       string            `json:"note,omitempty"`
	Context    map[string]any    `json:"context"`
	Transcript []entry           `json:"transcript"`
	Extra      map[string]string `json:"extra,omitempty"`

	last int64 // the log's last seq the transcript read (-1: none)
}

// entry is one line of a transcript as the desk shows it.
type entry struct {
	ID   string     `json:"id,omitempty"`
	Role string     `json:"role"` // customer, bot, agent, system, note (agent-only)
	Name string     `json:"name,omitempty"`
	Text string     `json:"text"`
	At   *time.Time `json:"at,omitempty"`
}

// entryOf turns a log record into a transcript line, if it is one.
func entryOf(r bridge.Record) (entry, bool) {
	a := r.Activity
	if a.Type != activity.TypeMessage || (a.Text == "" && len(a.Attachments) == 0) {
		return entry{}, false
	}
	e := entry{ID: a.ID, Text: a.Text}
	if !a.Timestamp.IsZero() {
		at := a.Timestamp.Time()
		e.At = &at
	}
	if e.Text == "" {
		e.Text = "(attachment)"
	}
	if a.From != nil {
		e.Name = a.From.Name
	}
	switch r.From {
	case bridge.RoleCustomer:
		e.Role = "customer"
	case bridge.RoleBot:
		e.Role = "bot"
		if !bridge.CustomerVisible(a) {
			e.Role = "note" // the bot's words for the agent only (an Omnichannel Escalate text)
		}
	default:
		e.Role = "agent"
		var role string
		if raw := a.ChannelDataField("bfbridgeRole"); raw != nil && json.Unmarshal(raw, &role) == nil && role == "system" {
			e.Role = "system"
		}
	}
	return e, true
}

// agentSocket is one open desk page.
type agentSocket struct {
	agent string
	out   chan deskMsg
}

// findAgent returns the configured agent whose id or name is name (ignoring case).
func (d *Desk) findAgent(name string) (routing.Agent, bool) {
	for _, a := range d.engine.Config().Agents {
		if strings.EqualFold(a.ID, name) || strings.EqualFold(a.Name, name) {
			return a, true
		}
	}
	return routing.Agent{}, false
}

var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 4096}

// serveAgent is the desk page's websocket: GET /sandbox/api/desk?agent=<id or name>.
func (d *Desk) serveAgent(w http.ResponseWriter, r *http.Request) {
	a, ok := d.findAgent(r.URL.Query().Get("agent"))
	if !ok {
		var ids []string
		for _, a := range d.engine.Config().Agents {
			ids = append(ids, a.ID)
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "NotFound",
			"message": "no such agent; the sandbox's agents are: " + strings.Join(ids, ", ")}})
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s := &agentSocket{agent: a.ID, out: make(chan deskMsg, 256)}
	d.mu.Lock()
	if d.socks[a.ID] == nil {
		d.socks[a.ID] = map[*agentSocket]struct{}{}
	}
	d.socks[a.ID][s] = struct{}{}
	d.mu.Unlock()
	defer func() { // under the lock, so that no sendTo writes to the closed channel
		d.mu.Lock()
		delete(d.socks[a.ID], s)
		close(s.out)
		d.mu.Unlock()
		conn.Close()
		d.deskClosed(a.ID) // once the page is no longer counted
	}()
	d.log.Info().Str("agent", a.ID).Msg("agent signed in")
	signedIn := d.deskConnected(r.Context(), a.ID)
	state := d.stateFor(r.Context(), a.ID)
	d.mu.Lock()
	d.sendSock(s, state)
	d.mu.Unlock()
	d.enqueue(signedIn) // after the state: the page's first message is always "state"

	go func() { // writer
		for m := range s.out {
			_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if conn.WriteJSON(m) != nil {
				conn.Close()
				return
			}
		}
	}()
	conn.SetReadLimit(64 << 10)
	for {
		var m deskMsg
		if err := conn.ReadJSON(&m); err != nil {
			return
		}
		if err := d.command(r.Context(), a.ID, m); err != nil {
			d.mu.Lock()
			d.sendSock(s, deskMsg{Type: "error", Message: err.Error()})
			d.mu.Unlock()
		}
	}
}

// deskConnected tells routing that the agent has a desk page open: an agent who was signed
// out gets their presence back, and waiting conversations come to them (routing/desk.go). It
// returns the task that carries that out.
func (d *Desk) deskConnected(ctx context.Context, agent string) task {
	var events []routing.Event
	err := d.decide(ctx, func() error {
		var err error
		events, err = d.engine.DeskConnected(agent)
		return err
	})
	if err != nil {
		d.log.Warn().Err(err).Str("agent", agent).Msg("desk sign-in not recorded; the next tick retries")
	}
	return task{events: events, then: func(context.Context) error { d.refreshAgent(agent); return nil }}
}

// deskClosed tells routing when the agent's last page on this process closed; the grace starts.
func (d *Desk) deskClosed(agent string) {
	d.mu.Lock()
	last := len(d.socks[agent]) == 0
	d.mu.Unlock()
	if !last {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), decideWait)
	defer cancel()
	if err := d.decide(ctx, func() error { return d.engine.DeskDisconnected(agent) }); err != nil {
		d.log.Warn().Err(err).Str("agent", agent).Msg("desk sign-out not recorded; the grace runs from the last tick")
	}
	d.enqueue(task{}) // stores the change
}

// openDesks lists the agents with a desk page open on this process.
func (d *Desk) openDesks() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for a, socks := range d.socks {
		if len(socks) > 0 {
			out = append(out, a)
		}
	}
	return out
}

// command carries out what an agent asked for.
func (d *Desk) command(ctx context.Context, agent string, m deskMsg) error {
	conv := m.ConversationID
	if m.Type == "send" {
		text := strings.TrimSpace(m.Text)
		if !d.holds(agent, conv) {
			return errors.New("you do not hold this conversation")
		}
		if text == "" {
			return nil
		}
		return d.say(ctx, conv, d.agentAccount(agent), "agent", text)
	}
	var events []routing.Event
	var then func(ctx context.Context) error
	err := d.decide(ctx, func() error {
		var err error
		events, then = nil, nil
		switch m.Type {
		case "presence":
			p, ok := routing.ParsePresence(m.Presence)
			if !ok {
				return errors.New("unknown presence " + m.Presence)
			}
			events, err = d.engine.SetPresence(agent, p)
			then = func(context.Context) error { d.refreshAgent(agent); return nil }
		case "accept":
			events, err = d.engine.Accept(agent, conv)
		case "decline":
			events, err = d.engine.Decline(agent, conv)
		case "transfer":
			if !d.holds(agent, conv) {
				return errors.New("you do not hold this conversation")
			}
			switch m.Kind {
			case "queue":
				var dec routing.Decision
				dec, err = d.engine.TransferToQueue(conv, m.Target)
				events = dec.Events
				then = func(ctx context.Context) error {
					d.sendTo(agent, deskMsg{Type: "removed", ConversationID: conv})
					return d.hub.Requeue(ctx, conv)
				}
			case "bot":
				var dec routing.Decision
				dec, err = d.engine.TransferToBot(conv, m.Target)
				events = dec.Events
				then = func(ctx context.Context) error {
					d.sendTo(agent, deskMsg{Type: "removed", ConversationID: conv})
					// Said while the desk still holds the conversation, so it is the contact
					// center's line, and before the bot's next words.
					if err := d.say(ctx, conv, systemAccount, "system", "You're talking to "+d.botName(m.Target)+" again."); err != nil {
						d.log.Warn().Err(err).Str("conv_id", conv).Msg("customer not told of the return to the bot")
					}
					return d.hub.ReturnToBot(ctx, conv)
				}
			default:
				return errors.New("transfer to a queue or a bot")
			}
		case "end":
			if !d.holds(agent, conv) {
				return errors.New("you do not hold this conversation")
			}
			// Release, not End: the agent ended it, which tells the customer ("Agent ended
			// conversation") and frees the agent's capacity; it leaves routing too.
			events, err = d.engine.Release(agent, conv)
			then = func(ctx context.Context) error {
				d.broadcastRemoved(conv)
				return d.hub.End(ctx, conv, bridge.RoleAgent, handoff.End{Reason: handoff.EndAgent})
			}
		default:
			return errors.New("unknown command " + m.Type)
		}
		return err
	})
	if err != nil {
		return err
	}
	d.enqueue(task{events: events, then: then})
	return nil
}

// botName is the name a bot of the routing configuration shows customers.
func (d *Desk) botName(id string) string {
	for _, b := range d.engine.Config().Bots {
		if b.ID == id && b.Name != "" {
			return "the " + b.Name
		}
	}
	return "the bot"
}

// holds reports whether agent has accepted conv.
func (d *Desk) holds(agent, conv string) bool {
	cs, ok := d.engine.Conversation(conv)
	return ok && cs.Agent == agent && cs.Stage == routing.StageAssigned
}

// stateFor builds the "state" message for an agent's page.
func (d *Desk) stateFor(ctx context.Context, agent string) deskMsg {
	m := deskMsg{Type: "state", Agent: d.agentView(agent)}
	for _, q := range d.engine.Config().Queues {
		m.Queues = append(m.Queues, q.Name)
	}
	for _, b := range d.engine.Config().Bots {
		m.Bots = append(m.Bots, b.ID)
	}
	for _, cs := range d.engine.Snapshot().Conversations {
		if cs.Agent == agent && (cs.Stage == routing.StageOffered || cs.Stage == routing.StageAssigned) {
			if v := d.view(ctx, cs.ID); v != nil {
				m.Conversations = append(m.Conversations, v)
			}
		}
	}
	return m
}

func (d *Desk) agentView(agent string) *agentView {
	for _, a := range d.engine.Snapshot().Agents {
		if a.ID == agent {
			load, capacity := loadOf(a)
			return &agentView{ID: a.ID, Name: a.Name, Presence: string(a.Presence), Load: load, Capacity: capacity}
		}
	}
	return &agentView{ID: agent, Name: agent}
}

// loadOf is an agent's load and capacity: its units, or with capacity profiles their sum.
func loadOf(a routing.AgentSnapshot) (load, capacity int) {
	load, capacity = a.UnitsUsed, a.Capacity
	for _, p := range a.Profiles {
		load += p.Used
		capacity += p.Max
	}
	return load, capacity
}

// view builds a conversation's view from its routing state, the desk's notes and the log.
func (d *Desk) view(ctx context.Context, convID string) *convView {
	cs, ok := d.engine.Conversation(convID)
	if !ok {
		return nil
	}
	v := &convView{ID: convID, Queue: cs.Queue, Context: map[string]any{}, Transcript: []entry{}, Now: time.Now().UTC()}
	switch cs.Stage {
	case routing.StageOffered:
		v.State = "offered"
		by := cs.OfferedAt.Add(d.offerTimeout(cs.Workstream))
		v.OfferedAt, v.AnswerBy = &cs.OfferedAt, &by
	case routing.StageAssigned:
		v.State = "active"
	default:
		v.State = string(cs.Stage)
	}
	for k, val := range cs.Context {
		v.Context[k] = val // typed: 1 stays a number, "1" a string, true a boolean
	}
	v.Customer = d.customerOf(convID)
	d.mu.Lock()
	if info := d.convs[convID]; info != nil {
		v.Note = info.Note
	}
	d.mu.Unlock()
	after := int64(-1)
	for {
		recs, err := d.hub.Since(ctx, convID, after, 500)
		if err != nil || len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if e, ok := entryOf(r); ok {
				v.Transcript = append(v.Transcript, e)
			}
			after = r.Seq
		}
	}
	v.last = after
	return v
}

// refresh sends the agent who is offered or holds a conversation its current view.
func (d *Desk) refresh(convID string) {
	cs, ok := d.engine.Conversation(convID)
	if !ok || cs.Agent == "" || (cs.Stage != routing.StageOffered && cs.Stage != routing.StageAssigned) {
		return
	}
	if v := d.view(context.Background(), convID); v != nil {
		d.sendTo(cs.Agent, deskMsg{Type: "conversation", Conversation: v})
		if d.leases != nil {
			d.watchFrom(convID, v.last) // what comes after reaches the page (shared.go)
		}
	}
	d.refreshAgent(cs.Agent)
}

// refreshAgent sends an agent's pages its presence and load.
func (d *Desk) refreshAgent(agent string) {
	d.sendTo(agent, deskMsg{Type: "agent", Agent: d.agentView(agent)})
}

// pushEntry sends a new transcript line to the agent who is offered or holds the conversation.
// With several instances the line comes from the log instead (shared.go: watchFrom), whichever
// instance appended or delivered it.
func (d *Desk) pushEntry(convID string, e entry) {
	if d.leases != nil {
		return
	}
	d.pushLine(convID, e)
}

// pushLine sends a transcript line to the conversation's agent's pages.
func (d *Desk) pushLine(convID string, e entry) {
	if cs, ok := d.engine.Conversation(convID); ok && cs.Agent != "" {
		d.sendTo(cs.Agent, deskMsg{Type: "activity", ConversationID: convID, Entry: &e})
	}
}

// broadcastRemoved tells every agent page that a conversation is gone.
func (d *Desk) broadcastRemoved(convID string) {
	d.mu.Lock()
	var agents []string
	for a := range d.socks {
		agents = append(agents, a)
	}
	d.mu.Unlock()
	for _, a := range agents {
		d.sendTo(a, deskMsg{Type: "removed", ConversationID: convID})
	}
}

func (d *Desk) sendTo(agent string, m deskMsg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for s := range d.socks[agent] {
		d.sendSock(s, m)
	}
}

// sendSock queues m for one page; a page too slow to take it misses it and catches up with
// the next "state" on reconnect. The caller holds d.mu, or owns s before it is registered.
func (d *Desk) sendSock(s *agentSocket, m deskMsg) {
	select {
	case s.out <- m:
	default:
	}
}
