package routing

import (
	"fmt"
	"time"
)

// Presence from desk connections (Config.DeskGrace). Omnichannel puts an agent Offline until
// they sign in to the Customer Service workspace and gives them their default presence when
// they do; an agent who closes the workspace is signed out. The sandbox desk plays the
// workspace: a desk page connected is a signed-in agent. So work is offered only to agents with
// a desk connected, and an offer never waits out its timeout on a page nobody has open.
//
// The desk reports connections (DeskConnected, DeskDisconnected) and, on every clock tick, the
// agents whose pages are still open (DesksOpen). Losing the last page starts a grace period:
// the agent keeps presence, offers and conversations, and gets no new offers; a page that comes
// back within it (a reload, a restart of the bridge) resumes as if nothing happened. When the
// grace runs out, Tick signs the agent out: Offline, offers withdrawn and given to others, the
// customers of the agent's conversations told the agent disconnected. DeskSeen also expires an
// open desk that stopped being reported (its bridge process died), so the state is safe to
// share between processes and to restore after a crash.

// deskRefresh is how often DesksOpen moves DeskSeen forward: often enough within the grace, not
// so often that the stored state changes on every tick.
func (e *Engine) deskRefresh() time.Duration { return e.cfg.DeskGrace / 3 }

// onDesk reports whether the agent may get work as far as desks go: always without
// Config.DeskGrace, else while a desk page is connected.
func (e *Engine) onDesk(st *AgentState) bool {
	return e.cfg.DeskGrace == 0 || st.Desk
}

// DeskConnected records that a desk page of the agent's connected. An agent the engine had
// signed out gets the presence the configuration gives them (as Omnichannel's default presence
// at sign-in), and waiting conversations are assigned. Without Config.DeskGrace it changes
// nothing.
func (e *Engine) DeskConnected(agent string) ([]Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pres[agent] == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAgent, agent)
	}
	if e.cfg.DeskGrace == 0 {
		return nil, nil
	}
	o := e.newOp()
	o.deskSeen(agent)
	o.finish()
	return o.events, nil
}

// deskSeen records a desk page of the agent's as open now, and signs the agent in if the
// engine had signed them out.
func (o *op) deskSeen(agent string) {
	st := o.e.pres[agent]
	st.Desk, st.DeskSeen = true, o.now
	if st.SignedOut {
		st.SignedOut = false
		o.setPresence(agent, o.e.agents[agent].Presence)
		o.recalcPresence(agent) // offers and conversations kept from before count
	}
}

// DeskDisconnected records that the agent's last desk page (of this process) closed: no new
// offers from now, and after Config.DeskGrace without a page Tick signs the agent out.
func (e *Engine) DeskDisconnected(agent string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.pres[agent]
	if st == nil {
		return fmt.Errorf("%w: %q", ErrUnknownAgent, agent)
	}
	if e.cfg.DeskGrace > 0 && st.Desk {
		st.Desk, st.DeskSeen = false, e.clock()
	}
	return nil
}

// DesksOpen records that the agents' desk pages are still connected; the desk calls it on
// every clock tick with the agents whose pages it holds. An agent signed out meanwhile (another
// process stopped hearing of the page, say) is signed in again. It returns the events, and
// whether the state changed (worth storing).
func (e *Engine) DesksOpen(agents []string) ([]Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cfg.DeskGrace == 0 {
		return nil, false
	}
	o, changed, signedIn := e.newOp(), false, false
	for _, id := range agents {
		st := e.pres[id]
		if st == nil || (!st.SignedOut && st.Desk && o.now.Sub(st.DeskSeen) < e.deskRefresh()) {
			continue
		}
		signedIn = signedIn || st.SignedOut
		o.deskSeen(id)
		changed = true
	}
	if signedIn {
		o.finish()
	}
	return o.events, changed
}

// signOutDeskless signs out the agents whose desk has not been seen for Config.DeskGrace:
// closed that long ago, or reported open by a process that stopped reporting.
func (o *op) signOutDeskless() {
	e := o.e
	if e.cfg.DeskGrace == 0 {
		return
	}
	for _, a := range e.cfg.Agents {
		st := e.pres[a.ID]
		if st.SignedOut || o.now.Sub(st.DeskSeen) < e.cfg.DeskGrace {
			continue
		}
		o.setPresence(a.ID, Offline)
		st.Manual, st.Desk, st.SignedOut = false, false, true
	}
}
