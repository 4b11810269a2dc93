package routing

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deskConfig is the sandbox's shape: one round-robin queue of three agents, presence from desk
// connections with a 15 s grace.
const deskConfig = `
workstreams:
  - name: chat
    fallback_queue: General
    capacity: {profile: Chat}
    offer_timeout: 120s
queues:
  - {name: General, assignment: advanced_round_robin, agents: [alex, sam, nina]}
capacity_profiles: [{name: Chat, max_units: 3}]
agents:
  - {id: nina, name: Nina, profiles: [Chat]}
  - {id: alex, name: Alex, profiles: [Chat]}
  - {id: sam, name: Sam, profiles: [Chat]}
desk_grace: 15s
`

func presenceOf(e *Engine, agent string) (Presence, bool) {
	for _, a := range e.Snapshot().Agents {
		if a.ID == agent {
			return a.Presence, a.Desk
		}
	}
	return "", false
}

func TestDeskAgentsStartOfflineUntilTheirDeskConnects(t *testing.T) {
	e, _ := newEngine(t, deskConfig)
	for _, a := range []string{"alex", "sam", "nina"} {
		p, desk := presenceOf(e, a)
		require.Equal(t, Offline, p, a)
		require.False(t, desk, a)
	}
	d := route(t, e, "c1", nil)
	require.Empty(t, offered(d.Events), "no desk connected: nobody is offered work")

	ev := must(t)(e.DeskConnected("alex"))
	require.Equal(t, []string{"c1→alex"}, offered(ev), "the waiting conversation goes to the agent who signed in")
	p, desk := presenceOf(e, "alex")
	require.Equal(t, Busy, p, "the configured presence (Available), then Busy with an offer")
	require.True(t, desk)
}

func TestDeskOnlyOneAgentSignedInGetsEveryCustomer(t *testing.T) {
	e, _ := newEngine(t, deskConfig)
	must(t)(e.DeskConnected("alex"))
	// Round robin would turn to sam and nina next; they have no desk open.
	for _, id := range []string{"c1", "c2", "c3"} {
		d := route(t, e, id, nil)
		require.Equal(t, []string{id + "→alex"}, offered(d.Events))
	}
}

func TestDeskReloadWithinGraceKeepsOffers(t *testing.T) {
	e, clk := newEngine(t, deskConfig)
	must(t)(e.DeskConnected("alex"))
	route(t, e, "c1", nil)
	require.NoError(t, e.DeskDisconnected("alex"))

	clk.Advance(5 * time.Second)
	d := route(t, e, "c2", nil)
	require.Empty(t, offered(d.Events), "no new offers while no desk is connected")
	require.Empty(t, of(e.Tick(), EventOfferWithdrawn))

	ev := must(t)(e.DeskConnected("alex")) // the page came back
	require.Equal(t, []string{"c2→alex"}, offered(ev))
	st, agent := stage(e, "c1")
	require.Equal(t, StageOffered, st, "the first offer survived the reload")
	require.Equal(t, "alex", agent)
	require.Empty(t, of(ev, EventPresence), "no sign-out, no sign-in")
}

func TestDeskGoneAfterGraceSignsOutAndReoffers(t *testing.T) {
	e, clk := newEngine(t, deskConfig)
	must(t)(e.DeskConnected("alex"))
	route(t, e, "c1", nil)
	c2 := route(t, e, "c2", nil)
	must(t)(e.Accept("alex", "c2"))
	require.Equal(t, []string{"c2→alex"}, offered(c2.Events))
	must(t)(e.DeskConnected("sam"))
	require.NoError(t, e.DeskDisconnected("alex"))

	clk.Advance(14 * time.Second)
	e.DesksOpen([]string{"sam"})
	require.Empty(t, of(e.Tick(), EventOfferWithdrawn), "still within the grace")

	clk.Advance(time.Second)
	e.DesksOpen([]string{"sam"})
	ev := e.Tick()
	withdrawn := of(ev, EventOfferWithdrawn)
	require.Len(t, withdrawn, 1)
	require.Equal(t, "c1", withdrawn[0].ConversationID)
	require.Equal(t, []string{"c1→sam"}, offered(ev), "the pending offer goes to the agent who is signed in")
	require.Contains(t, texts(ev), "Alex has been disconnected. Please stay in the chat.", "the customer of the accepted conversation is told")
	p, desk := presenceOf(e, "alex")
	require.Equal(t, Offline, p)
	require.False(t, desk)
	st, agent := stage(e, "c2")
	require.Equal(t, StageAssigned, st, "an accepted conversation stays with its agent")
	require.Equal(t, "alex", agent)

	ev = must(t)(e.DeskConnected("alex")) // signs in again: Busy (one conversation)
	p, _ = presenceOf(e, "alex")
	require.Equal(t, Busy, p)
	require.NotEmpty(t, of(ev, EventPresence))
}

func TestDeskOpenButNotReportedExpires(t *testing.T) {
	// A desk open in a process that died is reported no more: it expires like a closed one.
	e, clk := newEngine(t, deskConfig)
	must(t)(e.DeskConnected("alex"))
	must(t)(e.DeskConnected("sam"))
	for range 6 { // alex's page is reported every tick; sam's process is gone
		clk.Advance(3 * time.Second)
		e.DesksOpen([]string{"alex"})
		e.Tick()
	}
	p, _ := presenceOf(e, "alex")
	require.Equal(t, Available, p)
	p, desk := presenceOf(e, "sam")
	require.Equal(t, Offline, p)
	require.False(t, desk)
}

func TestDeskStateSurvivesRestore(t *testing.T) {
	e, clk := newEngine(t, deskConfig)
	must(t)(e.DeskConnected("alex"))
	route(t, e, "c1", nil)
	raw, err := json.Marshal(e.Export())
	require.NoError(t, err)

	// The bridge restarts: a new engine, the page reconnects within the grace.
	e2, err := New(e.Config(), clk.Now)
	require.NoError(t, err)
	var st State
	require.NoError(t, json.Unmarshal(raw, &st))
	require.NoError(t, e2.Restore(st))
	clk.Advance(4 * time.Second)
	require.Empty(t, of(e2.Tick(), EventOfferWithdrawn))
	must(t)(e2.DeskConnected("alex"))
	s, agent := stage(e2, "c1")
	require.Equal(t, StageOffered, s)
	require.Equal(t, "alex", agent)
}

func TestDeskManualOfflineStaysOnReconnect(t *testing.T) {
	e, _ := newEngine(t, deskConfig)
	must(t)(e.DeskConnected("sam"))
	must(t)(e.SetPresence("sam", Offline))
	require.NoError(t, e.DeskDisconnected("sam"))
	must(t)(e.DeskConnected("sam"))
	p, _ := presenceOf(e, "sam")
	require.Equal(t, Offline, p, "an Offline the agent chose is kept")
}

func TestWithoutDeskGracePresenceAloneDecides(t *testing.T) {
	e, _ := newEngine(t, deskConfig[:len(deskConfig)-len("desk_grace: 15s\n")])
	p, desk := presenceOf(e, "alex")
	require.Equal(t, Available, p)
	require.True(t, desk)
	d := route(t, e, "c1", nil)
	require.Len(t, offered(d.Events), 1, "no desk needed")
	ev, err := e.DeskConnected("alex")
	require.NoError(t, err)
	require.Empty(t, ev)
	_, err = e.DeskConnected("nobody")
	require.ErrorIs(t, err, ErrUnknownAgent)
}

func TestDeskGraceConfig(t *testing.T) {
	cfg, err := ParseConfig("test.yaml", []byte(deskConfig))
	require.NoError(t, err)
	require.Equal(t, 15*time.Second, cfg.DeskGrace)
	require.Equal(t, 15*time.Second, DefaultConfig().DeskGrace, "the sandbox tracks desks")

	_, err = ParseConfig("test.yaml", []byte(strings.Replace(deskConfig, "desk_grace: 15s", "desk_grace: -5s", 1)))
	require.ErrorContains(t, err, "desk_grace must be positive")
	_, err = ParseConfig("test.yaml", []byte(strings.Replace(deskConfig, "desk_grace: 15s", "desk_grace: soon", 1)))
	require.ErrorContains(t, err, "test.yaml:")
}

func TestDeskStillOpenSignsBackIn(t *testing.T) {
	// Signed out for want of news (the process holding the page was busy past the grace), the
	// agent is signed in again by the next report that the page is open, and gets the waiting work.
	e, clk := newEngine(t, deskConfig)
	must(t)(e.DeskConnected("alex"))
	clk.Advance(16 * time.Second)
	e.Tick()
	p, _ := presenceOf(e, "alex")
	require.Equal(t, Offline, p)
	route(t, e, "c1", nil)

	ev, changed := e.DesksOpen([]string{"alex"})
	require.True(t, changed)
	require.Equal(t, []string{"c1→alex"}, offered(ev))
	p, desk := presenceOf(e, "alex")
	require.Equal(t, Busy, p)
	require.True(t, desk)

	_, changed = e.DesksOpen([]string{"alex"})
	require.False(t, changed, "nothing to store until the refresh is due")
}
