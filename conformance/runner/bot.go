package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ScriptedBot is a bot that answers from a scenario: an http.Handler for its messaging endpoint
// (any path; conventionally /api/messages). It speaks the Bot Framework protocol as an anonymous
// botbuilder bot does (reference/botframework.md §3, §4.4): it takes one activity per POST,
// sends its replies to the activity's serviceUrl through the Connector API — ReplyToActivity,
// POST {serviceUrl}v3/conversations/{id}/activities/{replyToId}, or SendToConversation — with
// no Authorization header, and then answers the delivery (200 with an empty body, or a rule's
// status).
//
// The bot serves one scenario at a time: every conversation it first hears of while a scenario
// is running belongs to that scenario, and later deliveries of that conversation go to it even
// after it ended.
type ScriptedBot struct {
	client *http.Client

	mu     sync.Mutex
	active *botScript
	convs  map[string]*botScript
}

// NewScriptedBot returns a bot whose Connector calls are bounded by timeout (default 10s).
func NewScriptedBot(timeout time.Duration) *ScriptedBot {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &ScriptedBot{client: &http.Client{Timeout: timeout}, convs: map[string]*botScript{}}
}

// botScript is one scenario's state in the bot: its rules, what it received, what went wrong.
type botScript struct {
	vars map[string]string

	mu       sync.Mutex
	rules    []Rule
	used     []bool
	received []any
	problems []string
	changed  chan struct{}
}

// Script makes the bot answer as scenario s scripts it, in the conversations it first hears of
// from now until stop is called. RunScenario does this itself; Script is for callers that drive
// the customer's side another way (Replay).
func (b *ScriptedBot) Script(s *Scenario) (stop func()) {
	bs := b.begin(s.Rules, map[string]string{"user": s.User})
	return func() { b.end(bs) }
}

func (b *ScriptedBot) begin(rules []Rule, vars map[string]string) *botScript {
	bs := &botScript{vars: vars, rules: rules, used: make([]bool, len(rules)), changed: make(chan struct{})}
	b.mu.Lock()
	b.active = bs
	b.mu.Unlock()
	return bs
}

func (b *ScriptedBot) end(bs *botScript) {
	b.mu.Lock()
	if b.active == bs {
		b.active = nil
	}
	b.mu.Unlock()
}

func (b *ScriptedBot) scriptFor(conv string) *botScript {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bs, ok := b.convs[conv]; ok {
		return bs
	}
	if b.active == nil {
		return nil
	}
	b.convs[conv] = b.active
	return b.active
}

// setVar sets a variable of the script ({{conv}} once the customer knows it).
func (bs *botScript) setVar(k, v string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	vars := make(map[string]string, len(bs.vars)+1)
	for key, val := range bs.vars {
		vars[key] = val
	}
	vars[k] = v
	bs.vars = vars
}

// snapshot returns what the bot received so far and its problems.
func (bs *botScript) snapshot() (received []any, problems []string, changed <-chan struct{}) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return append([]any(nil), bs.received...), append([]string(nil), bs.problems...), bs.changed
}

func (bs *botScript) notifyLocked() {
	close(bs.changed)
	bs.changed = make(chan struct{})
}

func (bs *botScript) problem(format string, args ...any) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.problems = append(bs.problems, fmt.Sprintf(format, args...))
	bs.notifyLocked()
}

// take records a delivered activity and returns the first unused rule it triggers, with the
// script's variables.
func (bs *botScript) take(act map[string]any) (*Rule, map[string]string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.received = append(bs.received, act)
	bs.notifyLocked()
	m := newMatcher(bs.vars)
	for i, r := range bs.rules {
		if bs.used[i] {
			continue
		}
		if len(m.try("", r.Trigger, act)) == 0 {
			bs.used[i] = true
			return &bs.rules[i], bs.vars
		}
	}
	return nil, bs.vars
}

// ServeHTTP is the bot's messaging endpoint.
func (b *ScriptedBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "the messaging endpoint takes POST", http.StatusMethodNotAllowed)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	v, err := decodeJSON(raw)
	act, ok := v.(map[string]any)
	if err != nil || !ok {
		http.Error(w, "the body is not an activity", http.StatusBadRequest)
		return
	}
	conv, _ := pointer(act, "/conversation/id")
	convID, _ := conv.(string)
	bs := b.scriptFor(convID)
	if bs == nil { // no scenario is running: acknowledge and forget
		w.WriteHeader(http.StatusOK)
		return
	}
	rule, vars := bs.take(act)
	if rule == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	if rule.Delay > 0 {
		select {
		case <-time.After(rule.Delay):
		case <-r.Context().Done():
			return
		}
	}
	for i, reply := range rule.Replies {
		if err := b.reply(r.Context(), act, reply.(map[string]any), rule.ToConversation, vars); err != nil {
			bs.problem("the bot's reply %d to the rule of line %d failed: %v", i+1, rule.Line, err)
		}
	}
	w.WriteHeader(rule.Status)
}

// reply sends one reply to the activity it answers, filling what botbuilder fills: from and
// recipient swapped, conversation, channelId, serviceUrl, replyToId — unless the scenario's reply
// sets them itself.
func (b *ScriptedBot) reply(ctx context.Context, to map[string]any, tmpl map[string]any, toConversation bool, vars map[string]string) error {
	out := substitute(tmpl, vars).(map[string]any)
	setDefault := func(k string, v any) {
		if _, ok := out[k]; !ok && v != nil {
			out[k] = v
		}
	}
	setDefault("type", "message")
	setDefault("from", to["recipient"])
	setDefault("recipient", to["from"])
	setDefault("conversation", to["conversation"])
	setDefault("channelId", to["channelId"])
	setDefault("serviceUrl", to["serviceUrl"])
	replyTo, _ := to["id"].(string)
	if !toConversation {
		setDefault("replyToId", replyTo)
	}
	serviceURL, _ := to["serviceUrl"].(string)
	conv, _ := pointer(to, "/conversation/id")
	convID, _ := conv.(string)
	if serviceURL == "" || convID == "" {
		return fmt.Errorf("the delivered activity has no serviceUrl or conversation.id to reply to")
	}
	// botbuilder escapes the ids as encodeURIComponent does (reference/botframework.md §2).
	u := strings.TrimRight(serviceURL, "/") + "/v3/conversations/" + escapeComponent(convID) + "/activities"
	if !toConversation && replyTo != "" {
		u += "/" + escapeComponent(replyTo)
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "bfbridge-conformance scripted bot")
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %d: %s", req.URL.Path, resp.StatusCode, cut(strings.TrimSpace(string(answer)), 120))
	}
	return nil
}

// escapeComponent escapes as JavaScript's encodeURIComponent.
func escapeComponent(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	for _, keep := range []string{"!", "'", "(", ")", "*"} {
		e = strings.ReplaceAll(e, url.QueryEscape(keep), keep)
	}
	return e
}

// substitute returns v with scenario variables ({{conv}}, {{user}}) replaced in its strings.
func substitute(v any, vars map[string]string) any {
	switch x := v.(type) {
	case string:
		return interpolate(x, vars)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = substitute(e, vars)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = substitute(e, vars)
		}
		return out
	}
	return v
}
