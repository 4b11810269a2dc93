package routing

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Average wait time, as Omnichannel computes it: an exponential moving average of the waits of
// connected conversations, reset when the queue has had none for seven days.
const (
	averageWaitWeight = 0.2 // weight of the newest wait
	averageWaitReset  = 7 * 24 * time.Hour
)

// StateVersion is the version of the State format Export writes.
const StateVersion = 1

// State is the engine's runtime state in a form that survives a restart: agents' presence,
// queues' round-robin order and average wait, and every conversation the engine holds. It
// marshals to JSON. Agents' load is not stored: it follows from the conversations.
type State struct {
	Version       int                 `json:"version"`
	Seq           uint64              `json:"seq"`
	Agents        []AgentState        `json:"agents"`
	Queues        []QueueState        `json:"queues"`
	Conversations []ConversationState `json:"conversations"`
}

// AgentState is an agent's presence. Manual is true when the agent (or the configuration) set
// it, false when the engine computed it from capacity. With Config.DeskGrace, Desk says a desk
// page of the agent's is connected, DeskSeen when that was last known (connected, still open,
// or closed), and SignedOut that the engine put the agent Offline for want of a desk.
type AgentState struct {
	ID        string    `json:"id"`
	Presence  Presence  `json:"presence"`
	Manual    bool      `json:"manual,omitempty"`
	Desk      bool      `json:"desk,omitempty"`
	DeskSeen  time.Time `json:"desk_seen,omitzero"`
	SignedOut bool      `json:"signed_out,omitempty"`
}

// QueueState is a queue's round-robin order and average wait.
type QueueState struct {
	Name string `json:"name"`
	// LastAssigned is the sequence number of each member's last assignment in the queue.
	LastAssigned map[string]uint64 `json:"last_assigned,omitempty"`
	AverageWait  time.Duration     `json:"average_wait,omitempty"`
	Samples      int               `json:"samples,omitempty"`
	LastSampleAt time.Time         `json:"last_sample_at,omitzero"`
}

// addSample adds a connected conversation's wait to the average.
func (q *QueueState) addSample(wait time.Duration, now time.Time) {
	if q.Samples > 0 && now.Sub(q.LastSampleAt) > averageWaitReset {
		q.Samples = 0
	}
	if q.Samples == 0 {
		q.AverageWait = wait
	} else {
		q.AverageWait += time.Duration(averageWaitWeight * float64(wait-q.AverageWait))
	}
	q.Samples++
	q.LastSampleAt = now
}

// averageWait returns a queue's average wait once it has enough conversations to show.
func (e *Engine) averageWait(queue string, now time.Time) (time.Duration, bool) {
	q := e.qs[queue]
	if q == nil || q.Samples < e.cfg.AverageWaitMinConversations || now.Sub(q.LastSampleAt) > averageWaitReset {
		return 0, false
	}
	return q.AverageWait, true
}

// ConversationState is one conversation's routing state.
type ConversationState struct {
	ID         string           `json:"id"`
	Workstream string           `json:"workstream"`
	Stage      Stage            `json:"stage"`
	Context    map[string]Value `json:"context,omitempty"`
	Bot        string           `json:"bot,omitempty"`   // StageBot
	Queue      string           `json:"queue,omitempty"` // its queue; for a bot, the queue it was picked from, if any
	Agent      string           `json:"agent,omitempty"` // StageOffered, StageAssigned
	// ExcludedBots never get the conversation through routing: the bots it escalated from.
	ExcludedBots []string `json:"excluded_bots,omitempty"`
	// Declined holds when each agent last declined it or let an offer expire.
	Declined map[string]time.Time `json:"declined,omitempty"`
	// TransferredFrom is the agent who transferred it to its queue, not offered it again there.
	TransferredFrom string    `json:"transferred_from,omitempty"`
	ArrivedAt       time.Time `json:"arrived_at,omitzero"`  // first entry in a queue: its place in line
	EnqueuedAt      time.Time `json:"enqueued_at,omitzero"` // entry in the current queue: its waiting time
	OfferedAt       time.Time `json:"offered_at,omitzero"`
	AcceptedAt      time.Time `json:"accepted_at,omitzero"`
	Seq             uint64    `json:"seq"`
	Escalations     int       `json:"escalations,omitempty"`
	Transfers       int       `json:"transfers,omitempty"`
	// Units and Profile are the capacity the agent holds for it while offered or assigned.
	Units          int       `json:"units,omitempty"`
	Profile        string    `json:"profile,omitempty"`
	LastPosition   int       `json:"last_position,omitempty"`
	LastPositionAt time.Time `json:"last_position_at,omitzero"`
}

func (c *ConversationState) clone() ConversationState {
	d := *c
	d.Context = maps.Clone(c.Context)
	d.ExcludedBots = slices.Clone(c.ExcludedBots)
	d.Declined = maps.Clone(c.Declined)
	return d
}

// Export returns a copy of the runtime state, to persist.
func (e *Engine) Export() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := State{Version: StateVersion, Seq: e.seq}
	for _, a := range e.cfg.Agents {
		s.Agents = append(s.Agents, *e.pres[a.ID])
	}
	for _, q := range e.cfg.Queues {
		qs := *e.qs[q.Name]
		qs.LastAssigned = maps.Clone(qs.LastAssigned)
		s.Queues = append(s.Queues, qs)
	}
	for _, c := range e.sortedConvs() {
		s.Conversations = append(s.Conversations, c.clone())
	}
	return s
}

// Restore replaces the runtime state with s, typically after a restart. The configuration may
// have changed since s was exported: agents, queues and bots it no longer has are dropped, a
// conversation offered to or held by a removed agent (or bot) waits again, one in a removed
// queue goes to its workstream's fallback queue; a conversation of a removed workstream is an
// error. Restore assigns nothing: call Tick afterwards.
func (e *Engine) Restore(s State) error {
	if s.Version != StateVersion {
		return fmt.Errorf("routing: state version %d, want %d", s.Version, StateVersion)
	}
	ids := map[string]bool{}
	for _, c := range s.Conversations {
		switch {
		case c.ID == "":
			return errors.New("routing: state has a conversation without id")
		case ids[c.ID]:
			return fmt.Errorf("routing: state has conversation %s twice", c.ID)
		case e.ws[c.Workstream] == nil:
			return fmt.Errorf("%w: %q (conversation %s)", ErrUnknownWorkstream, c.Workstream, c.ID)
		}
		switch c.Stage {
		case StageBot, StageWaiting, StageOffered, StageAssigned:
		default:
			return fmt.Errorf("routing: conversation %s has unknown stage %q", c.ID, c.Stage)
		}
		ids[c.ID] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reset()
	e.seq = s.Seq
	for _, a := range s.Agents {
		if st := e.pres[a.ID]; st != nil && a.Presence.Valid() {
			*st = a
		}
	}
	for _, q := range s.Queues {
		if qs := e.qs[q.Name]; qs != nil {
			*qs = q
			qs.LastAssigned = maps.Clone(q.LastAssigned)
			if qs.LastAssigned == nil {
				qs.LastAssigned = map[string]uint64{}
			}
		}
	}
	for i := range s.Conversations {
		c := s.Conversations[i].clone()
		if c.Context == nil {
			c.Context = map[string]Value{}
		}
		e.seq = max(e.seq, c.Seq)
		if e.queues[c.Queue] == nil {
			c.Queue = ""
			if c.Stage != StageBot {
				c.Queue = e.ws[c.Workstream].FallbackQueue
			}
		}
		switch {
		case c.Stage == StageBot && e.bots[c.Bot] == nil,
			(c.Stage == StageOffered || c.Stage == StageAssigned) && e.agents[c.Agent] == nil:
			c.Stage, c.Bot, c.Agent, c.Units, c.Profile = StageWaiting, "", "", 0, ""
			if c.Queue == "" {
				c.Queue = e.ws[c.Workstream].FallbackQueue
			}
			if c.EnqueuedAt.IsZero() {
				c.EnqueuedAt = e.clock()
			}
			if c.ArrivedAt.IsZero() {
				c.ArrivedAt = c.EnqueuedAt
			}
		case c.Stage == StageOffered || c.Stage == StageAssigned:
			e.hold(c.Agent, c.Units, c.Profile, 1)
		}
		e.convs[c.ID] = &c
	}
	return nil
}

// Snapshot is the supervisor's view: queues with what waits in them, agents with presence and
// load, and every conversation in routing.
type Snapshot struct {
	At            time.Time
	Queues        []QueueSnapshot
	Agents        []AgentSnapshot
	Conversations []ConversationState
}

// QueueSnapshot is one queue.
type QueueSnapshot struct {
	Name        string
	Assignment  AssignmentMethod
	Priority    int
	Waiting     []WaitingItem // in queue order
	Offered     int
	Assigned    int
	OldestWait  time.Duration // how long the first in line has waited in this queue
	AverageWait time.Duration // 0 until the queue has enough connected conversations
}

// WaitingItem is a conversation waiting in a queue.
type WaitingItem struct {
	ConversationID string
	Position       int
	Waited         time.Duration
}

// AgentSnapshot is one agent.
type AgentSnapshot struct {
	ID, Name      string
	Presence      Presence
	Manual        bool
	Desk          bool // a desk page is connected (always true without Config.DeskGrace)
	UnitsUsed     int
	Capacity      int
	Profiles      []ProfileLoad
	Offered       []string // conversation ids
	Conversations []string // assigned conversation ids
}

// ProfileLoad is an agent's use of a capacity profile.
type ProfileLoad struct {
	Profile   string
	Used, Max int
}

// Snapshot returns the current view for supervisors.
func (e *Engine) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	s := Snapshot{At: now}
	convs := e.sortedConvs()
	for _, q := range e.cfg.Queues {
		qs := QueueSnapshot{Name: q.Name, Assignment: q.Assignment, Priority: q.Priority}
		qs.AverageWait, _ = e.averageWait(q.Name, now)
		var waiting []*ConversationState
		for _, c := range convs {
			if c.Queue != q.Name {
				continue
			}
			switch c.Stage {
			case StageWaiting:
				waiting = append(waiting, c)
			case StageOffered:
				qs.Offered++
			case StageAssigned:
				qs.Assigned++
			}
		}
		slices.SortFunc(waiting, queueOrder)
		for i, c := range waiting {
			w := now.Sub(c.EnqueuedAt)
			qs.Waiting = append(qs.Waiting, WaitingItem{ConversationID: c.ID, Position: i + 1, Waited: w})
			qs.OldestWait = max(qs.OldestWait, w)
		}
		s.Queues = append(s.Queues, qs)
	}
	for _, a := range e.cfg.Agents {
		st, l := e.pres[a.ID], e.load[a.ID]
		as := AgentSnapshot{ID: a.ID, Name: a.Name, Presence: st.Presence, Manual: st.Manual, Desk: e.onDesk(st),
			UnitsUsed: l.units, Capacity: a.Capacity}
		for _, p := range a.Profiles {
			as.Profiles = append(as.Profiles, ProfileLoad{Profile: p.Profile, Used: l.profiles[p.Profile], Max: e.profileLimit(&a, p.Profile)})
		}
		for _, c := range convs {
			switch {
			case c.Agent != a.ID:
			case c.Stage == StageOffered:
				as.Offered = append(as.Offered, c.ID)
			case c.Stage == StageAssigned:
				as.Conversations = append(as.Conversations, c.ID)
			}
		}
		s.Agents = append(s.Agents, as)
	}
	for _, c := range convs {
		s.Conversations = append(s.Conversations, c.clone())
	}
	return s
}
