package runner

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Status is the outcome of a scenario, or of a requirement in a report.
type Status string

// Statuses.
const (
	Pass        Status = "pass"
	Fail        Status = "fail"
	Unsupported Status = "unsupported"
)

// Failure is one way a target broke a requirement in a scenario.
type Failure struct {
	Requirements []string `json:"requirements"`
	Line         int      `json:"line,omitempty"`
	Message      string   `json:"message"`
}

// Result is the outcome of one scenario.
type Result struct {
	Scenario     string    `json:"scenario"`
	Title        string    `json:"title,omitempty"`
	File         string    `json:"file,omitempty"`
	Requirements []string  `json:"requirements"`
	Status       Status    `json:"status"`
	Reason       string    `json:"reason,omitempty"` // the first failure, or why it is unsupported
	Failures     []Failure `json:"failures,omitempty"`
	// Aborted is set when an input step failed, so that the expected output was not checked.
	Aborted bool `json:"aborted,omitempty"`
	// KnownBug is the scenario's known-bug header: a failure of the bridge already reported.
	KnownBug string `json:"knownBug,omitempty"`
	Millis   int64  `json:"ms"`
	titles   map[string]string
}

// scenarioTimeout bounds one scenario as a whole.
const scenarioTimeout = 2 * time.Minute

// Run runs the scenarios one after another against t, calls progress (when not nil) with each
// result as it is known, and returns the report.
func Run(ctx context.Context, t *Target, scenarios []*Scenario, progress func(Result)) *Report {
	domain, note := t.Domain(ctx)
	rep := &Report{Target: t.URL, Domain: domain, Note: note}
	for _, s := range scenarios {
		r := RunScenario(ctx, t, s)
		rep.Results = append(rep.Results, r)
		if progress != nil {
			progress(r)
		}
	}
	return rep
}

// RunScenario runs one scenario against t. It does not panic or hang on anything the target
// does: every network call and wait is bounded.
func RunScenario(ctx context.Context, t *Target, s *Scenario) (res Result) {
	start := time.Now()
	res = Result{Scenario: s.Name, Title: s.Title, File: s.File, Requirements: s.Requirements, KnownBug: s.KnownBug, titles: s.Titles}
	defer func() { res.Millis = time.Since(start).Milliseconds() }()
	if why := unsupportedBy(t, s); why != "" {
		res.Status, res.Reason = Unsupported, why
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, scenarioTimeout)
	defer cancel()
	var desk string
	if s.NeedsAgent {
		var why string
		if desk, why = t.ContactCenter(ctx); why != "" {
			res.Status, res.Reason = Unsupported, why
			return res
		}
	}
	domain, _ := t.Domain(ctx)
	x := &execution{
		t: t, s: s, domain: domain, vars: map[string]string{"user": s.User},
		responses: map[string]*response{}, streams: map[string]*stream{}, deadline: time.Now().Add(scenarioTimeout),
	}
	if t.Bot != nil && s.NeedsBot {
		x.bot = t.Bot.begin(s.Rules, x.varsCopy())
		defer t.Bot.end(x.bot)
	}
	defer x.closeStreams()
	if desk != "" {
		if err := x.openAgents(ctx, desk); err != nil {
			x.fail(0, s.Requirements[:1], "the agent leg: "+err.Error())
			res.Aborted = true
		}
		defer x.closeAgents(ctx)
	}

steps:
	for _, st := range s.Steps {
		if res.Aborted {
			break
		}
		if err := x.step(ctx, st); err != nil {
			reqs := strings.Split(x.attribute(err.req, st), ",")
			var named []string
			for _, r := range reqs {
				if s.Names(r) {
					named = append(named, r)
				}
			}
			switch {
			case err.kind == limited || (err.kind == missing && len(named) == 0):
				res.Status, res.Reason = Unsupported, err.msg
				return res
			case err.kind == missing:
				x.fail(st.Line, named, err.msg)
			default:
				x.fail(st.Line, reqs, err.msg)
			}
			res.Aborted = true
			break steps
		}
	}
	if len(x.failures) == 0 {
		for _, e := range s.Expects {
			x.check(ctx, e)
		}
	}
	res.Failures = x.failures
	if conv := x.vars["conv"]; conv != "" { // conversation ids are random: keep them out of reports
		for i := range res.Failures {
			res.Failures[i].Message = strings.ReplaceAll(res.Failures[i].Message, conv, "{conv}")
		}
	}
	res.Status = Pass
	if len(res.Failures) > 0 {
		res.Status = Fail
		f := res.Failures[0]
		res.Reason = strings.Join(f.Requirements, ",") + ": " + f.Message
	}
	return res
}

// unsupportedBy says why the target cannot run s, or "".
func unsupportedBy(t *Target, s *Scenario) string {
	switch {
	case s.InProcessOnly && !t.InProcess:
		return "needs the in-process bridge set up with " + bridgeConfigText(s.BridgeConfig)
	case s.NeedsBot && t.Bot == nil:
		return "needs the scripted bot at the target's bot endpoint (bridge conformance --bot-listen)"
	}
	for _, st := range s.Steps {
		if st.Party != "customer" && st.Party != "agent" {
			return "the " + st.Party + " leg is not implemented by this runner yet"
		}
	}
	for _, e := range s.Expects {
		if e.Kind == "receives" && e.Party != "bot" && e.Party != "agent" {
			return "the " + e.Party + " leg is not implemented by this runner yet"
		}
	}
	return ""
}

func bridgeConfigText(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

// execution is the state of one scenario run.
type execution struct {
	t      *Target
	s      *Scenario
	domain string
	vars   map[string]string

	token     string
	tokenTTL  time.Duration
	tokenAt   time.Time
	streamURL string

	responses map[string]*response
	streams   map[string]*stream
	bot       *botScript
	agent     *agentLeg // the contact center's agents, for scenarios that need them
	deadline  time.Time
	failures  []Failure
	bindings  map[string]any // values bound by named placeholders in earlier blocks
}

func (x *execution) varsCopy() map[string]string {
	m := make(map[string]string, len(x.vars))
	for k, v := range x.vars {
		m[k] = v
	}
	return m
}

func (x *execution) setVar(k, v string) {
	x.vars[k] = v
	if x.bot != nil {
		x.bot.setVar(k, v)
	}
}

func (x *execution) fail(line int, reqs []string, msg string) {
	x.failures = append(x.failures, Failure{Requirements: reqs, Line: line, Message: msg})
}

// attribute returns the requirement a failed step breaks: its req= argument, else the
// requirement its action exercises, else the scenario's first.
func (x *execution) attribute(req string, st Step) string {
	switch {
	case st.Args["req"] != "":
		return st.Args["req"]
	case req != "":
		return req
	}
	return x.s.Requirements[0]
}

func (x *execution) closeStreams() {
	for _, s := range x.streams {
		s.close()
	}
}

// stepError is why a step could not do its part; req names the requirements it concerns,
// separated by commas. A missing capability (the target has no token
// endpoint, no websocket) fails the scenarios that check it and makes the others unsupported; a
// limit of the runner's (a token that lives longer than it waits) makes any scenario unsupported.
type stepError struct {
	kind int
	req  string
	msg  string
}

const (
	failed = iota
	missing
	limited
)

func stepFail(req, format string, args ...any) *stepError {
	return &stepError{kind: failed, req: req, msg: fmt.Sprintf(format, args...)}
}

func stepMissing(req, format string, args ...any) *stepError {
	return &stepError{kind: missing, req: req, msg: fmt.Sprintf(format, args...)}
}

// expected reports whether an expectation judges the response labelled label: then an error
// status is for it to check, not a failure of the step.
func (x *execution) expected(label string) bool {
	if label == "" {
		return false
	}
	for _, e := range x.s.Expects {
		if e.Kind == "response" && e.Label == label {
			return true
		}
	}
	return false
}

// keep stores a step's response and fails the step on an error the scenario does not expect.
func (x *execution) keep(st Step, req string, r *response) *stepError {
	if l := st.Label(); l != "" {
		x.responses[l] = r
	}
	if x.expected(st.Label()) {
		return nil
	}
	if r.Err != nil || r.Status < 200 || r.Status > 299 {
		return stepFail(req, "%s: %s", describe(st), r.summary())
	}
	return nil
}

func describe(st Step) string {
	d := st.Action
	if st.Action == "request" && len(st.Pos) >= 2 {
		d = st.Pos[0] + " " + st.Pos[1]
	}
	return d
}

// auth returns the Authorization header a step uses: auth=secret|token|none|invalid|LABEL:/ptr,
// by default the conversation's token, else the secret.
func (x *execution) auth(st Step) (string, *stepError) {
	v, set := st.Args["auth"]
	switch {
	case !set || v == "":
		if x.token != "" {
			return authHeader(x.token), nil
		}
		return authHeader(x.t.Secret), nil
	case v == "secret":
		return authHeader(x.t.Secret), nil
	case v == "token":
		if x.token == "" {
			return "", stepMissing("DL3", "%s needs a token and the target gave none", describe(st))
		}
		return authHeader(x.token), nil
	case v == "none":
		return "", nil
	case v == "invalid":
		return "Bearer invalid.conformance.token", nil
	}
	ref, ok := x.ref(v)
	s, isString := ref.(string)
	if !ok || !isString || s == "" {
		return "", stepMissing("DL3", "%s: auth=%s names no token", describe(st), v)
	}
	return authHeader(s), nil
}

// ref resolves "LABEL:/json/pointer" in a step's response, or in a stream ("/watermark", "/activities/N").
func (x *execution) ref(s string) (any, bool) {
	label, ptr, ok := strings.Cut(s, ":")
	if !ok || !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	if r, ok := x.responses[label]; ok {
		return pointer(r.Body, ptr)
	}
	if st, ok := x.streams[label]; ok {
		snap := st.snapshot()
		return pointer(map[string]any{"activities": snap.acts, "watermark": snap.watermark}, ptr)
	}
	return nil, false
}

// resolve returns v with references ("{{LABEL:/ptr}}", a whole string) and variables replaced.
func (x *execution) resolve(v any) any {
	switch t := v.(type) {
	case string:
		if strings.HasPrefix(t, "{{") && strings.HasSuffix(t, "}}") {
			if r, ok := x.ref(strings.TrimSpace(t[2 : len(t)-2])); ok {
				return r
			}
		}
		return interpolate(t, x.vars)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = x.resolve(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = x.resolve(e)
		}
		return out
	}
	return v
}

// argValue returns a step argument with a reference resolved to its text. A reference to a
// labelled result that lacks the value gives "" (a GET that returned no watermark: start over).
func (x *execution) argValue(v string) string {
	if r, ok := x.ref(v); ok {
		if s, ok := r.(string); ok {
			return s
		}
		return strings.Trim(show(r), `"`)
	}
	if label, ptr, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(ptr, "/") {
		_, isResponse := x.responses[label]
		_, isStream := x.streams[label]
		if isResponse || isStream {
			return ""
		}
	}
	return interpolate(v, x.vars)
}

func (x *execution) convURL(suffix string) string {
	return x.domain + "/conversations/" + url.PathEscape(x.vars["conv"]) + suffix
}

// watermarkQuery returns "?watermark=…" from a step's watermark argument: absent or "none" for
// no parameter, "" for an empty one, a value or a reference.
func (x *execution) watermarkQuery(st Step) string {
	v, set := st.Args["watermark"]
	if !set || v == "none" {
		return ""
	}
	return "?watermark=" + url.QueryEscape(x.argValue(v))
}

// takeConversation records what a start or reconnect answered: the conversation id, token,
// its life and the stream URL.
func (x *execution) takeConversation(r *response) {
	body, _ := r.Body.(map[string]any)
	if body == nil || r.Status < 200 || r.Status > 299 {
		return
	}
	if id, ok := body["conversationId"].(string); ok && id != "" {
		x.setVar("conv", id)
	}
	if tok, ok := body["token"].(string); ok && tok != "" {
		x.token, x.tokenAt = tok, time.Now()
		x.tokenTTL = 0
		if n, ok := body["expires_in"].(interface{ Float64() (float64, error) }); ok {
			if f, err := n.Float64(); err == nil {
				x.tokenTTL = time.Duration(f * float64(time.Second))
			}
		}
	}
	if su, ok := body["streamUrl"].(string); ok {
		x.streamURL = su
	}
}

// body returns the JSON encoding of a step's first JSON value, resolved.
func (x *execution) body(st Step) ([]byte, bool) {
	if len(st.Body) == 0 {
		return nil, false
	}
	v := x.resolve(st.Body[0])
	if s, ok := v.(string); ok && st.Action == "request" {
		return []byte(s), true
	}
	return encode(v), true
}

func statusIs(r *response, codes ...int) bool {
	if r.Err != nil {
		return false
	}
	for _, c := range codes {
		if r.Status == c {
			return true
		}
	}
	return false
}
