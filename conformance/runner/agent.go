package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The agent leg is the contact center's side of an escalation as its human agents see it. The
// runner plays it on the bridge's sandbox contact center (channels/desk): it reads the agents
// from the supervisor view (GET /sandbox/api/supervisor) and signs in as every one of them on
// the desk's websocket (GET /sandbox/api/desk?agent=<id>), as the desk page does, so that it
// sees the conversation whichever agent routing offers it to. The desk's protocol
// (channels/desk/agents.go): the server sends "state" (the agent and the conversations offered
// to it or held by it), "agent" (its presence and load), "conversation" (one conversation's
// view: queue, customer, note, context, transcript), "activity" (a new transcript entry),
// "removed" (the conversation left the agent) and "error"; the page sends "accept", "send"
// (text) and "end", each with a conversationId.
//
// A target without that supervisor view has no contact center the runner can observe: the
// scenarios that need the agent leg are unsupported there, with the reason.

// Paths of the sandbox desk, under the target's root.
const (
	supervisorPath = "/sandbox/api/supervisor"
	deskPath       = "/sandbox/api/desk"
)

// agentActions are the agent's input actions.
var agentActions = map[string]bool{"accept": true, "send": true, "end": true}

// ContactCenter returns the base URL of the target's observable contact center (the sandbox
// desk's), or why it has none. The target is probed once.
func (t *Target) ContactCenter(ctx context.Context) (base, why string) {
	t.deskOnce.Do(func() { t.deskBase, t.deskWhy = t.probeDesk(ctx) })
	return t.deskBase, t.deskWhy
}

func (t *Target) probeDesk(ctx context.Context) (string, string) {
	domain, _ := t.Domain(ctx)
	base := serverRoot(domain)
	if base == "" {
		return "", "no observable contact center: the target URL is not an absolute http(s) URL"
	}
	r := t.do(ctx, http.MethodGet, base+supervisorPath, "", nil, "")
	if r.Err != nil || r.Status != http.StatusOK {
		return "", "no observable contact center: GET " + supervisorPath + " answered " + r.summary() +
			" (the agent leg plays the agents of the bridge's sandbox desk)"
	}
	if _, err := supervisorAgents(r.Body); err != nil {
		return "", "no observable contact center: GET " + supervisorPath + " is not the sandbox desk's supervisor view: " + err.Error()
	}
	return base, ""
}

// serverRoot returns the URL the Direct Line base domain is served under: domain without its
// /v3/directline (or /directline) suffix, or "" when domain is not an absolute http(s) URL.
func serverRoot(domain string) string {
	u, err := url.Parse(strings.TrimRight(domain, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	p := u.Path
	for _, suffix := range []string{"/v3/directline", "/directline"} {
		if strings.HasSuffix(p, suffix) {
			p = strings.TrimSuffix(p, suffix)
			break
		}
	}
	return u.Scheme + "://" + u.Host + p
}

// supervisorAgents returns the agent ids of the supervisor view, in its order.
func supervisorAgents(body any) ([]string, error) {
	m, ok := body.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	list, ok := m["agents"].([]any)
	if !ok {
		return nil, errors.New("no agents list")
	}
	var ids []string
	for _, a := range list {
		id, _ := pointer(a, "/id")
		if s, ok := id.(string); ok && s != "" {
			ids = append(ids, s)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("no agents")
	}
	return ids, nil
}

// agentLeg is the runner signed in on the desk as every agent, and what each was shown.
type agentLeg struct {
	timeout time.Duration

	mu       sync.Mutex
	socks    map[string]*deskSocket
	presence map[string]string           // agent -> presence, as the desk last showed it
	seen     map[string]map[string]*seen // conversation -> agent -> what the agent was shown
	order    map[string][]string         // conversation -> agents, in the order they first saw it
	problems []string                    // the desk's error answers, in order
	changed  chan struct{}
	wg       sync.WaitGroup
}

// deskSocket is one agent's desk websocket.
type deskSocket struct {
	agent string
	conn  *websocket.Conn
	wmu   sync.Mutex // one writer at a time
	ready bool       // the first "state" arrived (under agentLeg.mu)
}

// seen is one conversation as one agent was shown it: the desk's latest view, its transcript
// merged with the entries pushed since, and its state (offered, active, or removed once the
// desk took it away).
type seen struct {
	view    map[string]any
	entries []any
	state   string
}

// openAgentLeg signs in as every agent of the desk at base and waits for each one's state.
// Reads stop at deadline.
func openAgentLeg(ctx context.Context, t *Target, base string, deadline time.Time) (*agentLeg, error) {
	r := t.do(ctx, http.MethodGet, base+supervisorPath, "", nil, "")
	if r.Err != nil || r.Status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", supervisorPath, r.summary())
	}
	ids, err := supervisorAgents(r.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", supervisorPath, err)
	}
	l := &agentLeg{
		timeout: t.timeout(), socks: map[string]*deskSocket{}, presence: map[string]string{},
		seen: map[string]map[string]*seen{}, order: map[string][]string{}, changed: make(chan struct{}),
	}
	wsBase := "ws" + strings.TrimPrefix(base, "http")
	d := websocket.Dialer{HandshakeTimeout: t.timeout()}
	for _, id := range ids {
		dctx, cancel := context.WithTimeout(ctx, t.timeout())
		conn, resp, err := d.DialContext(dctx, wsBase+deskPath+"?agent="+url.QueryEscape(id), nil)
		cancel()
		if err != nil {
			l.close()
			if resp != nil {
				return nil, fmt.Errorf("sign in as %s: the desk websocket refused: %d %s", id, resp.StatusCode, http.StatusText(resp.StatusCode))
			}
			return nil, fmt.Errorf("sign in as %s: %w", id, err)
		}
		_ = conn.SetReadDeadline(deadline)
		s := &deskSocket{agent: id, conn: conn}
		l.mu.Lock()
		l.socks[id] = s
		l.mu.Unlock()
		l.wg.Add(1)
		go l.read(s)
	}
	ready := func() bool {
		for _, s := range l.socks {
			if !s.ready {
				return false
			}
		}
		return true
	}
	if !l.waitFor(ctx, t.timeout(), ready) {
		l.close()
		return nil, fmt.Errorf("the desk sent no state to every agent within %s", t.timeout())
	}
	return l, nil
}

// close signs every agent out and waits for the readers to stop.
func (l *agentLeg) close() {
	l.mu.Lock()
	socks := make([]*deskSocket, 0, len(l.socks))
	for _, s := range l.socks {
		socks = append(socks, s)
	}
	l.mu.Unlock()
	for _, s := range socks {
		s.wmu.Lock()
		_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		s.wmu.Unlock()
		_ = s.conn.Close()
	}
	l.wg.Wait()
}

// deskFrame is a message of the desk's websocket, as far as the runner reads it.
type deskFrame struct {
	Type  string `json:"type"`
	Agent *struct {
		ID       string `json:"id"`
		Presence string `json:"presence"`
	} `json:"agent"`
	Conversations  []json.RawMessage `json:"conversations"`
	Conversation   json.RawMessage   `json:"conversation"`
	ConversationID string            `json:"conversationId"`
	Entry          json.RawMessage   `json:"entry"`
	Message        string            `json:"message"`
}

// read takes one agent's messages until the socket closes.
func (l *agentLeg) read(s *deskSocket) {
	defer l.wg.Done()
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		var f deskFrame
		if err := json.Unmarshal(data, &f); err != nil {
			l.problem("agent %s: the desk sent a message that is not JSON: %s", s.agent, cut(string(data), 80))
			continue
		}
		l.take(s, f)
	}
}

func (l *agentLeg) take(s *deskSocket, f deskFrame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.notifyLocked()
	if f.Agent != nil && f.Agent.Presence != "" {
		l.presence[s.agent] = f.Agent.Presence
	}
	switch f.Type {
	case "state":
		s.ready = true
		for _, raw := range f.Conversations {
			l.viewLocked(s.agent, raw)
		}
	case "conversation":
		l.viewLocked(s.agent, f.Conversation)
	case "activity":
		e, err := decodeJSON(f.Entry)
		if err != nil || f.ConversationID == "" {
			l.problems = append(l.problems, fmt.Sprintf("agent %s: an activity message without an entry or a conversationId", s.agent))
			return
		}
		sn := l.seenLocked(f.ConversationID, s.agent)
		sn.entries = mergeEntries(sn.entries, []any{e})
	case "removed":
		if sn := l.seen[f.ConversationID][s.agent]; sn != nil {
			sn.state = "removed"
		}
	case "error":
		l.problems = append(l.problems, fmt.Sprintf("the desk answered agent %s: %s", s.agent, f.Message))
	}
}

// viewLocked takes a conversation view the desk sent an agent.
func (l *agentLeg) viewLocked(agent string, raw json.RawMessage) {
	v, err := decodeJSON(raw)
	view, ok := v.(map[string]any)
	id, _ := view["id"].(string)
	if err != nil || !ok || id == "" {
		l.problems = append(l.problems, fmt.Sprintf("agent %s: a conversation view without an id: %s", agent, cut(string(raw), 80)))
		return
	}
	sn := l.seenLocked(id, agent)
	transcript, _ := view["transcript"].([]any)
	// The view is read from the log when it is sent: entries pushed before it that it lacks
	// are newer than that read, so they go after it.
	sn.entries = mergeEntries(transcript, sn.entries)
	sn.view = view
	if st, ok := view["state"].(string); ok {
		sn.state = st
	}
}

func (l *agentLeg) seenLocked(conv, agent string) *seen {
	if l.seen[conv] == nil {
		l.seen[conv] = map[string]*seen{}
	}
	sn := l.seen[conv][agent]
	if sn == nil {
		sn = &seen{}
		l.seen[conv][agent] = sn
		l.order[conv] = append(l.order[conv], agent)
	}
	return sn
}

// mergeEntries returns base followed by the entries of more whose id base does not hold.
func mergeEntries(base, more []any) []any {
	out := append([]any(nil), base...)
	have := map[string]bool{}
	for _, e := range base {
		if id, _ := pointer(e, "/id"); id != nil {
			have[fmt.Sprint(id)] = true
		}
	}
	for _, e := range more {
		id, _ := pointer(e, "/id")
		if id != nil && have[fmt.Sprint(id)] {
			continue
		}
		if id != nil {
			have[fmt.Sprint(id)] = true
		}
		out = append(out, e)
	}
	return out
}

func (l *agentLeg) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
	l.notifyLocked()
}

func (l *agentLeg) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// snapshot returns what the agents were shown of conversation conv, one object per agent in
// the order they first saw it: the desk's view with the agent's id, the state and the merged
// transcript.
func (l *agentLeg) snapshot(conv string) (views []any, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, agent := range l.order[conv] {
		sn := l.seen[conv][agent]
		if sn.view == nil {
			continue // an entry pushed before the view: the view follows
		}
		v := make(map[string]any, len(sn.view)+3)
		for k, val := range sn.view {
			v[k] = val
		}
		v["type"] = "conversation"
		v["agent"] = agent
		v["state"] = sn.state
		v["transcript"] = append([]any{}, sn.entries...)
		views = append(views, v)
	}
	return views, l.changed
}

// stateOf returns the agents who were shown conv and its state for each.
func (l *agentLeg) stateOf(conv string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for agent, sn := range l.seen[conv] {
		if sn.view != nil {
			out[agent] = sn.state
		}
	}
	return out
}

// problemCount returns how many error answers the desk gave so far; problemsSince those after n.
func (l *agentLeg) problemCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.problems)
}

func (l *agentLeg) problemsSince(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n >= len(l.problems) {
		return nil
	}
	return append([]string(nil), l.problems[n:]...)
}

// presences describes the agents' presence, for a message on why nobody got a conversation.
func (l *agentLeg) presences() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for agent := range l.socks {
		p := l.presence[agent]
		if p == "" {
			p = "presence unknown"
		}
		parts = append(parts, agent+" "+p)
	}
	sort.Strings(parts)
	return "agents: " + strings.Join(parts, ", ")
}

// waitFor polls cond, on every desk message and at least every pollInterval, until it holds
// (true) or within passes or ctx ends (false).
func (l *agentLeg) waitFor(ctx context.Context, within time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ok, changed := cond(), l.changed
		l.mu.Unlock()
		if ok {
			return true
		}
		tick := time.NewTimer(pollInterval)
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline.C:
			tick.Stop()
			return false
		case <-ctx.Done():
			tick.Stop()
			return false
		}
		tick.Stop()
	}
}

// command sends a desk command as an agent.
func (l *agentLeg) command(agent string, m map[string]string) error {
	l.mu.Lock()
	s := l.socks[agent]
	l.mu.Unlock()
	if s == nil {
		return fmt.Errorf("not signed in as %s", agent)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(l.timeout))
	return s.conn.WriteJSON(m)
}

// agentStep runs one of the agent's input steps on the scenario's conversation:
//
//	> agent accept      waits until an agent is offered the conversation, accepts it as that
//	                    agent and waits until the desk shows it active
//	> agent send        + a JSON string (or {"text": …}): the agent who holds it says that
//	> agent end         the agent who holds it ends it; waits until the desk removes it
func (x *execution) agentStep(ctx context.Context, st Step) *stepError {
	l, conv := x.agent, x.vars["conv"]
	if l == nil {
		return stepFail("", "agent %s: the agent leg is not signed in", st.Action)
	}
	if conv == "" {
		return stepFail("", "agent %s: the customer has no conversation yet", st.Action)
	}
	wait := x.t.wait()
	holder := func(states ...string) (string, string) {
		var agents []string
		for agent := range l.seen[conv] {
			agents = append(agents, agent)
		}
		sort.Strings(agents)
		for _, agent := range agents {
			sn := l.seen[conv][agent]
			for _, s := range states {
				if sn.view != nil && sn.state == s {
					return agent, s
				}
			}
		}
		return "", ""
	}
	// await waits until an agent has the conversation in one of states, or a new error answer.
	await := func(from int, states ...string) (agent, state string, problems []string) {
		l.waitFor(ctx, wait, func() bool {
			agent, state = holder(states...)
			return agent != "" || len(l.problems) > from
		})
		return agent, state, l.problemsSince(from)
	}
	switch st.Action {
	case "accept":
		from := l.problemCount()
		agent, state, problems := await(from, "active", "offered")
		switch {
		case len(problems) > 0:
			return stepFail("", "agent accept: %s", problems[0])
		case agent == "":
			return stepFail("", "agent accept: no agent was offered the conversation within %s (%s; seen: %s)", wait, l.presences(), describeStates(l.stateOf(conv)))
		case state == "active":
			return nil
		}
		if err := l.command(agent, map[string]string{"type": "accept", "conversationId": conv}); err != nil {
			return stepFail("", "agent accept: %v", err)
		}
		ok := l.waitFor(ctx, wait, func() bool {
			sn := l.seen[conv][agent]
			return sn.state == "active" || len(l.problems) > from
		})
		if problems := l.problemsSince(from); len(problems) > 0 {
			return stepFail("", "agent accept: %s", problems[0])
		}
		if !ok {
			return stepFail("", "agent accept: %s accepted, and within %s the desk did not show the conversation active (%s)", agent, wait, describeStates(l.stateOf(conv)))
		}
		return nil
	case "send", "end":
		l.mu.Lock()
		agent, _ := holder("active")
		l.mu.Unlock()
		if agent == "" {
			return stepFail("", "agent %s: no agent holds the conversation (%s); accept it first", st.Action, describeStates(l.stateOf(conv)))
		}
		from := l.problemCount()
		cmd := map[string]string{"type": st.Action, "conversationId": conv}
		if st.Action == "send" {
			text, ok := agentText(x.resolve(firstValue(st.Body)))
			if !ok {
				return stepFail("", "agent send needs a JSON string or {\"text\": …}")
			}
			cmd["text"] = text
		}
		if err := l.command(agent, cmd); err != nil {
			return stepFail("", "agent %s: %v", st.Action, err)
		}
		if st.Action == "send" {
			return nil // the customer's side shows whether it arrived
		}
		ok := l.waitFor(ctx, wait, func() bool { return l.seen[conv][agent].state == "removed" || len(l.problems) > from })
		if problems := l.problemsSince(from); len(problems) > 0 {
			return stepFail("", "agent end: %s", problems[0])
		}
		if !ok {
			return stepFail("", "agent end: within %s the desk did not take the conversation from %s", wait, agent)
		}
		return nil
	}
	return stepFail("", "unknown agent action %q", st.Action)
}

func firstValue(vals []any) any {
	if len(vals) == 0 {
		return nil
	}
	return vals[0]
}

// agentText reads what an agent says: a JSON string, or an object's text.
func agentText(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, t != ""
	case map[string]any:
		s, ok := t["text"].(string)
		return s, ok && s != ""
	}
	return "", false
}

func describeStates(m map[string]string) string {
	if len(m) == 0 {
		return "no agent was shown it"
	}
	parts := make([]string, 0, len(m))
	for agent, st := range m {
		parts = append(parts, agent+" "+st)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// openAgents signs the agent leg in for a scenario that needs it.
func (x *execution) openAgents(ctx context.Context, base string) error {
	l, err := openAgentLeg(ctx, x.t, base, x.deadline)
	if err != nil {
		return err
	}
	x.agent = l
	return nil
}

// closeAgents ends the scenario's conversation, so that it holds no agent's capacity and no
// place in a queue when the next scenario escalates, and signs the agents out. The customer
// ends it (an endOfConversation, which every leg hears); an error (it ended already) is ignored.
func (x *execution) closeAgents(ctx context.Context) {
	if x.agent == nil {
		return
	}
	defer x.agent.close()
	if x.vars["conv"] == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.t.timeout())
	defer cancel()
	auth := authHeader(x.token)
	if x.token == "" {
		auth = authHeader(x.t.Secret)
	}
	body := encode(map[string]any{"type": "endOfConversation", "from": map[string]any{"id": x.vars["user"]}})
	x.t.do(ctx, http.MethodPost, x.convURL("/activities"), auth, body, "application/json")
}
