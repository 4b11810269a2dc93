package runner

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// fakeDesk speaks the sandbox desk's agent protocol (channels/desk/agents.go: "state",
// "conversation", "activity", "removed", "error" down; "accept", "send", "end" up) and its
// supervisor view (channels/desk/http.go), for one conversation offered to one agent.
type fakeDesk struct {
	srv    *httptest.Server
	offer  string // the agent offered conversation "c1"
	mu     sync.Mutex
	conns  map[string]*websocket.Conn
	wmu    sync.Mutex
	got    []map[string]string // commands received
	state  string              // of c1: offered, active, removed
	refuse bool                // answer every command with an error
}

func newFakeDesk(t *testing.T, offer string) *fakeDesk {
	t.Helper()
	d := &fakeDesk{offer: offer, conns: map[string]*websocket.Conn{}, state: "offered"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sandbox/api/supervisor", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"queues": [], "agents": [{"id": "alex", "presence": "Available"}, {"id": "sam", "presence": "Offline"}]}`))
	})
	mux.HandleFunc("GET /sandbox/api/desk", d.serve)
	d.srv = httptest.NewServer(mux)
	t.Cleanup(d.srv.Close)
	return d
}

// view is c1 as the desk shows it, with the transcript read so far.
func (d *fakeDesk) view(transcript ...map[string]any) map[string]any {
	if transcript == nil {
		transcript = []map[string]any{}
	}
	d.mu.Lock()
	state := d.state
	d.mu.Unlock()
	return map[string]any{"id": "c1", "state": state, "queue": "General", "customer": "User", "note": "a note",
		"context": map[string]any{"Topic": "Billing"}, "transcript": transcript}
}

func (d *fakeDesk) send(agent string, m any) {
	d.mu.Lock()
	c := d.conns[agent]
	d.mu.Unlock()
	d.wmu.Lock()
	defer d.wmu.Unlock()
	_ = c.WriteJSON(m)
}

func (d *fakeDesk) serve(w http.ResponseWriter, r *http.Request) {
	agent := r.URL.Query().Get("agent")
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	d.mu.Lock()
	d.conns[agent] = c
	d.mu.Unlock()
	state := map[string]any{"type": "state", "agent": map[string]any{"id": agent, "presence": "Available"}}
	if agent == d.offer {
		// An entry pushed before the view that lacks it, then the view: the runner keeps both.
		d.send(agent, map[string]any{"type": "activity", "conversationId": "c1", "entry": map[string]any{"id": "c1|2", "role": "system", "text": "waiting"}})
		state["conversations"] = []any{d.view(map[string]any{"id": "c1|0", "role": "customer", "text": "hi"})}
	}
	d.send(agent, state)
	for {
		var m map[string]string
		if err := c.ReadJSON(&m); err != nil {
			return
		}
		d.mu.Lock()
		d.got = append(d.got, m)
		refuse := d.refuse
		d.mu.Unlock()
		if refuse {
			d.send(agent, map[string]any{"type": "error", "message": "you do not hold this conversation"})
			continue
		}
		switch m["type"] {
		case "accept":
			d.mu.Lock()
			d.state = "active"
			d.mu.Unlock()
			d.send(agent, map[string]any{"type": "conversation", "conversation": d.view(map[string]any{"id": "c1|0", "role": "customer", "text": "hi"})})
		case "send":
			d.send(agent, map[string]any{"type": "activity", "conversationId": "c1", "entry": map[string]any{"id": "c1|3", "role": "agent", "text": m["text"]}})
			// a repeated push is not a second line
			d.send(agent, map[string]any{"type": "activity", "conversationId": "c1", "entry": map[string]any{"id": "c1|3", "role": "agent", "text": m["text"]}})
		case "end":
			d.send(agent, map[string]any{"type": "removed", "conversationId": "c1"})
		}
	}
}

func (d *fakeDesk) commands() []map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]map[string]string(nil), d.got...)
}

func TestServerRoot(t *testing.T) {
	for in, want := range map[string]string{
		"http://h:1/v3/directline":      "http://h:1",
		"http://h:1/v3/directline/":     "http://h:1",
		"https://h/prefix/directline":   "https://h/prefix",
		"http://h:1/other":              "http://h:1/other",
		"::not a url::":                 "",
		"ftp://h/v3/directline":         "",
		"http://h:1":                    "http://h:1",
		"http://127.0.0.1:9/directline": "http://127.0.0.1:9",
	} {
		require.Equal(t, want, serverRoot(in), in)
	}
}

func TestParseAgentLeg(t *testing.T) {
	src := "requirement: ESC:AgentNote@botframework note\n" +
		"> customer start\n> agent accept req=ESC:Status@botframework\n> agent send\n\"Hello\"\n> agent end\n" +
		"----------\n< agent receives exactly req=ESC:AgentNote@botframework\n{\"note\": \"n\"}\n"
	s, err := Parse("esc.scenario", []byte(src))
	require.NoError(t, err)
	require.True(t, s.NeedsAgent)
	require.False(t, s.NeedsBot)
	require.Equal(t, "agent", s.Steps[1].Party)
	require.Equal(t, []any{"Hello"}, s.Steps[2].Body)
	require.Equal(t, "agent", s.Expects[0].Party)
	require.Equal(t, "exactly", s.Expects[0].Mode)

	s, err = Parse("x.scenario", []byte("requirement: ESC:End@desk\nneeds: bot agent\n----------\n"))
	require.NoError(t, err)
	require.True(t, s.NeedsAgent && s.NeedsBot)

	_, err = Parse("x.scenario", []byte("requirement: ESC:End@desk\n> agent dance\n----------\n"))
	require.ErrorContains(t, err, `x.scenario:2: unknown agent action "dance"`)
	_, err = Parse("x.scenario", []byte("requirement: ESC:End@desk\nneeds: robot\n----------\n"))
	require.ErrorContains(t, err, `needs takes 'bot' and 'agent', got "robot"`)
}

// TestAgentLegUnsupported: a target whose supervisor view answers 404 has no contact center the
// runner can observe: scenarios that need the agent leg are unsupported, with the reason, and
// the target is probed once.
func TestAgentLegUnsupported(t *testing.T) {
	var probes int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == supervisorPath {
			mu.Lock()
			probes++
			mu.Unlock()
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	s, err := Parse("esc.scenario", []byte("requirement: ESC:Routing.Vars@healthbot\n> customer start\n----------\n< agent receives\n{}\n"))
	require.NoError(t, err)
	target := &Target{URL: srv.URL + "/v3/directline", Timeout: time.Second, Wait: time.Second}
	for range 2 {
		res := RunScenario(context.Background(), target, s)
		require.Equal(t, Unsupported, res.Status)
		require.Contains(t, res.Reason, "no observable contact center: GET /sandbox/api/supervisor answered 404")
	}
	mu.Lock()
	require.Equal(t, 1, probes)
	mu.Unlock()

	// Something that answers, but not with the desk's supervisor view.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"agents": []}`)) }))
	t.Cleanup(other.Close)
	_, why := (&Target{URL: other.URL + "/v3/directline", Timeout: time.Second}).ContactCenter(context.Background())
	require.Contains(t, why, "not the sandbox desk's supervisor view: no agents")
}

// TestAgentLeg signs in on a fake desk as every agent, and plays the agent's steps: the view
// merges pushed entries once each, accept waits for the offer and the active state, send and
// end reach the desk, and the desk's error answers fail the step.
func TestAgentLeg(t *testing.T) {
	d := newFakeDesk(t, "alex")
	target := &Target{URL: d.srv.URL + "/v3/directline", Timeout: 2 * time.Second, Wait: 2 * time.Second}
	base, why := target.ContactCenter(context.Background())
	require.Empty(t, why)
	require.Equal(t, d.srv.URL, base)

	s := &Scenario{Requirements: []string{"ESC:AgentNote@botframework"}}
	x := &execution{t: target, s: s, vars: map[string]string{"conv": "c1", "user": "u"}, deadline: time.Now().Add(time.Minute)}
	require.NoError(t, x.openAgents(context.Background(), base))
	defer x.agent.close()

	views, _ := x.agent.snapshot("c1")
	require.Len(t, views, 1, "only alex was offered it")
	v := views[0].(map[string]any)
	require.Equal(t, "alex", v["agent"])
	require.Equal(t, "offered", v["state"])
	require.Equal(t, "conversation", v["type"])
	require.Len(t, v["transcript"], 2, "the view's entry, then the one pushed before it: %v", v["transcript"])
	require.Contains(t, x.agent.presences(), "alex Available")

	ctx := context.Background()
	require.Nil(t, x.agentStep(ctx, Step{Party: "agent", Action: "accept"}))
	require.Nil(t, x.agentStep(ctx, Step{Party: "agent", Action: "send", Body: []any{map[string]any{"text": "Hello {{user}}"}}}))
	require.Eventually(t, func() bool {
		views, _ := x.agent.snapshot("c1")
		return len(views[0].(map[string]any)["transcript"].([]any)) == 3
	}, 2*time.Second, 10*time.Millisecond, "the agent's line, once")

	e := Expect{Kind: "receives", Party: "agent", Mode: "exactly", Values: []any{map[string]any{
		"id": "{{conv}}", "state": "active", "note": "a note", "context": map[string]any{"Topic": "Billing"},
		"transcript": []any{map[string]any{"text": "hi"}, map[string]any{"text": "waiting"}, map[string]any{"role": "agent", "text": "Hello u"}},
	}}}
	x.check(ctx, e)
	require.Empty(t, x.failures)

	require.Nil(t, x.agentStep(ctx, Step{Party: "agent", Action: "end"}))
	views, _ = x.agent.snapshot("c1")
	require.Equal(t, "removed", views[0].(map[string]any)["state"])
	var types []string
	for _, c := range d.commands() {
		require.Equal(t, "c1", c["conversationId"])
		types = append(types, c["type"])
	}
	require.Equal(t, []string{"accept", "send", "end"}, types)
	require.Equal(t, "Hello u", d.commands()[1]["text"])

	// After the end nobody holds it; a desk that refuses says why.
	err := x.agentStep(ctx, Step{Party: "agent", Action: "send", Body: []any{"more"}})
	require.NotNil(t, err)
	require.Contains(t, err.msg, "no agent holds the conversation (alex removed)")
	d.mu.Lock()
	d.refuse, d.state = true, "offered"
	d.mu.Unlock()
	d.send("alex", map[string]any{"type": "conversation", "conversation": d.view()})
	require.Eventually(t, func() bool { return x.agent.stateOf("c1")["alex"] == "offered" }, 2*time.Second, 10*time.Millisecond)
	err = x.agentStep(ctx, Step{Party: "agent", Action: "accept"})
	require.NotNil(t, err)
	require.Contains(t, err.msg, "the desk answered agent alex: you do not hold this conversation")

	// A conversation nobody is offered: accept says who was there.
	x.vars["conv"] = "c2"
	target.Wait = 300 * time.Millisecond
	err = x.agentStep(ctx, Step{Party: "agent", Action: "accept"})
	require.NotNil(t, err)
	require.Contains(t, err.msg, "no agent was offered the conversation within 300ms (agents: alex Available, sam Available; seen: no agent was shown it)")
}

func TestAgentText(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
		ok   bool
	}{
		{"hi", "hi", true}, {map[string]any{"text": "hi"}, "hi", true}, {"", "", false},
		{map[string]any{"type": "message"}, "", false}, {json.Number("1"), "", false}, {nil, "", false},
	} {
		got, ok := agentText(tc.in)
		require.Equal(t, tc.want, got)
		require.Equal(t, tc.ok, ok)
	}
	require.True(t, strings.HasPrefix(describeStates(map[string]string{"b": "x", "a": "y"}), "a y, b x"))
}
