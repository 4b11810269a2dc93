package desk

import (
	"net/http"
	"time"

	"github.com/bfbridge/bfbridge/channels/desk/routing"
)

// The supervisor view's data (GET /sandbox/api/supervisor): queues, the conversations waiting
// in them, the offers waiting for an agent's answer (to whom, for how long, until when), and
// the agents. Each value a person reads comes in their words (Assignment, Status, Customer,
// Agent); the raw values beside them (Method, Presence, ids) are for scripts and tests.

type supQueue struct {
	Name              string  `json:"name"`
	Method            string  `json:"method"`     // the configuration's name of the method
	Assignment        string  `json:"assignment"` // the same, in words
	Waiting           int     `json:"waiting"`
	OldestWaitSeconds float64 `json:"oldestWaitSeconds"`
	Offered           int     `json:"offered"`
	Active            int     `json:"active"`
}

type supWaiting struct {
	ConversationID string  `json:"conversationId"`
	Customer       string  `json:"customer"`
	Queue          string  `json:"queue"`
	Position       int     `json:"position"`
	WaitedSeconds  float64 `json:"waitedSeconds"`
}

type supOffer struct {
	ConversationID string  `json:"conversationId"`
	Customer       string  `json:"customer"`
	Queue          string  `json:"queue"`
	AgentID        string  `json:"agentId"`
	Agent          string  `json:"agent"`
	OfferedSeconds float64 `json:"offeredSeconds"` // how long the offer has waited for an answer
	ExpiresSeconds float64 `json:"expiresSeconds"` // until it passes to someone else
}

type supAgent struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Presence      string   `json:"presence"`
	Status        string   `json:"status"` // presence and desk, in words
	SignedIn      bool     `json:"signedIn"`
	Load          int      `json:"load"`
	Capacity      int      `json:"capacity"`
	Conversations []string `json:"conversations"`
	Offered       []string `json:"offered"`
}

type supView struct {
	At      time.Time    `json:"at"`
	Queues  []supQueue   `json:"queues"`
	Waiting []supWaiting `json:"waiting"`
	Offers  []supOffer   `json:"offers"`
	Agents  []supAgent   `json:"agents"`
}

// assignmentWords says what a queue's assignment method does, as a supervisor would put it.
func assignmentWords(m routing.AssignmentMethod) string {
	switch m {
	case routing.HighestCapacity:
		return "Most free capacity first"
	case routing.AdvancedRoundRobin:
		return "Round robin (longest since last chat first)"
	}
	return string(m)
}

// presenceWords is a presence as the desk's people say it; with desks tracked, whether the agent
// has a desk open.
func presenceWords(a routing.AgentSnapshot, tracked bool) string {
	p := string(a.Presence)
	if a.Presence == routing.BusyDND {
		p = "Do not disturb"
	}
	switch {
	case !tracked:
		return p
	case a.Presence == routing.Offline && !a.Desk:
		return "Signed out"
	case !a.Desk:
		return p + " — desk closed, signing out soon"
	}
	return p
}

func (d *Desk) supervisor(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, d.supervisorView())
}

func (d *Desk) supervisorView() supView {
	s := d.engine.Snapshot()
	cfg := d.engine.Config()
	out := supView{At: s.At, Queues: []supQueue{}, Waiting: []supWaiting{}, Offers: []supOffer{}, Agents: []supAgent{}}
	for _, q := range s.Queues {
		out.Queues = append(out.Queues, supQueue{Name: q.Name, Method: string(q.Assignment), Assignment: assignmentWords(q.Assignment),
			Waiting: len(q.Waiting), OldestWaitSeconds: q.OldestWait.Seconds(), Offered: q.Offered, Active: q.Assigned})
		for _, it := range q.Waiting {
			out.Waiting = append(out.Waiting, supWaiting{ConversationID: it.ConversationID, Customer: d.customerOf(it.ConversationID),
				Queue: q.Name, Position: it.Position, WaitedSeconds: it.Waited.Seconds()})
		}
	}
	names := map[string]string{}
	for _, a := range s.Agents {
		names[a.ID] = a.Name
		load, capacity := loadOf(a)
		out.Agents = append(out.Agents, supAgent{ID: a.ID, Name: a.Name, Presence: string(a.Presence),
			Status: presenceWords(a, cfg.DeskGrace > 0), SignedIn: a.Desk, Load: load, Capacity: capacity,
			Conversations: append([]string{}, a.Conversations...), Offered: append([]string{}, a.Offered...)})
	}
	for _, c := range s.Conversations {
		if c.Stage != routing.StageOffered {
			continue
		}
		waited := s.At.Sub(c.OfferedAt)
		out.Offers = append(out.Offers, supOffer{ConversationID: c.ID, Customer: d.customerOf(c.ID), Queue: c.Queue,
			AgentID: c.Agent, Agent: names[c.Agent], OfferedSeconds: waited.Seconds(),
			ExpiresSeconds: max(0, (d.offerTimeout(c.Workstream) - waited).Seconds())})
	}
	return out
}

// offerTimeout is how long an offer of the workstream waits for an answer.
func (d *Desk) offerTimeout(workstream string) time.Duration {
	for _, w := range d.engine.Config().Workstreams {
		if w.Name == workstream {
			return w.OfferTimeout
		}
	}
	return 0
}

// customerOf is the name the desk shows for a conversation's customer.
func (d *Desk) customerOf(convID string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if info := d.convs[convID]; info != nil && info.Customer != "" {
		return info.Customer
	}
	return visitorName(convID)
}
