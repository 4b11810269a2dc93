// Package runner replays conformance scenarios (conformance/scenarios/*.scenario) against a
// Direct Line server: the bridge in process, or any live target (the bridge, offline-directline,
// Microsoft's service). It plays the customer over the Direct Line REST API and websocket; when
// the target delivers to it, the bot, with a scripted bot that speaks the Bot Framework
// delivery and Connector reply protocol; and when the target has the bridge's sandbox contact
// center, its human agents (agent.go), to check escalations. It reports, per requirement, pass,
// fail or unsupported with the reason. It never panics on what a target answers, and bounds every network call.
//
// The scenario format is documented in conformance/scenarios/README.md.
package runner

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// Separator divides a scenario's inputs from its expected outputs (caddy's golden-file style).
const Separator = "----------"

// Scenario is one parsed scenario file.
type Scenario struct {
	Name   string // from the name header, or the file name without its extension
	Title  string
	File   string
	Source string // where the recorded data came from, when it did
	// Requirements are the ids of what the scenario checks, in file order; Titles has the text
	// given after each id.
	Requirements []string
	Titles       map[string]string
	// User is the customer's user id: {{user}} in the file. Default: "dl_conformance-user".
	User string
	// BridgeConfig is how the in-process bridge is set up for this scenario (token_ttl,
	// keep_alive, bot_timeout); live targets run the scenario as they are configured.
	BridgeConfig map[string]string
	// InProcessOnly scenarios need a setting only the in-process bridge can have.
	InProcessOnly bool
	// NeedsBot is set when the scenario scripts the bot or checks what it receives: it then
	// needs the runner's scripted bot at the target's bot endpoint.
	NeedsBot bool
	// NeedsAgent is set when the scenario plays or checks the contact center's agents ("> agent"
	// steps, "< agent receives"): it then needs a contact center the runner can observe (the
	// bridge's sandbox desk), and is unsupported without one.
	NeedsAgent bool
	// KnownBug describes a known conformance bug of the bridge that makes the scenario fail
	// against it: the in-process test expects the failure (and fails once it is fixed, so that
	// the header is removed). Other targets are judged as usual.
	KnownBug string

	Steps   []Step
	Rules   []Rule
	Expects []Expect
}

// Names reports whether the scenario names requirement id.
func (s *Scenario) Names(id string) bool {
	for _, r := range s.Requirements {
		if r == id {
			return true
		}
	}
	return false
}

// Step is one input action of a party: "> customer post as=p1" and its JSON body.
type Step struct {
	Line   int
	Party  string            // "customer" or "agent"; other parties (omnichannel) are reserved
	Action string            // start, post, get, …
	Pos    []string          // positional arguments
	Args   map[string]string // key=value arguments (as, auth, watermark, req, …)
	// Headers are a request step's extra HTTP headers: "Name: value" lines before its body.
	Headers [][2]string
	Body    []any // JSON values of the block
}

// Label is the step's "as=" name, by which expectations and references find its result.
func (s Step) Label() string { return s.Args["as"] }

// Rule is a scripted bot answer: "> bot on TRIGGER": when the bot receives an activity that
// matches the trigger, it sends the replies (by the Connector API) before it answers the
// delivery with Status (default 200). Rules are used once each, in file order.
type Rule struct {
	Line    int
	Trigger any
	Replies []any
	Status  int
	Delay   time.Duration
	// ToConversation sends the replies with SendToConversation (no replyToId) instead of
	// ReplyToActivity.
	ToConversation bool
}

// Expect is one block of expected output.
type Expect struct {
	Line int
	// Kind is "response" (an input step's HTTP answer), "sees" (what the customer sees on
	// GET /activities), "receives" (what a party's leg receives: the bot's, the agents'),
	// or "stream" (what a websocket stream delivered).
	Kind  string
	Party string // for "receives": bot, agent (omnichannel is reserved)
	Label string // for "response" and "stream"
	// Mode is how a list of activities matches: "ordered" (default: these, in this order, with
	// others between), "exactly" (these and no others, in this order), or "unordered".
	Mode    string
	Status  []int
	Headers [][2]string
	Values  []any
	Reqs    []string // req=…: the requirements a difference here breaks
}

// customerActions are the customer's actions, with the requirement each one exercises: a
// failure of the action itself is reported against it.
var customerActions = map[string]string{
	"start": "DL4", "generate": "DL3", "refresh": "DL3", "decode-token": "DL3", "expire": "DL2",
	"post": "DL8", "get": "DL9", "await": "", "stream": "DL5", "await-keepalive": "DL6",
	"drop": "", "reconnect": "DL5", "upload": "DL10", "fetch": "DL10", "request": "",
}

// Parse reads one scenario. file names it in errors and gives the default name.
func Parse(file string, data []byte) (*Scenario, error) {
	s := &Scenario{File: file, Titles: map[string]string{}, BridgeConfig: map[string]string{}, User: "dl_conformance-user"}
	s.Name = strings.TrimSuffix(path.Base(file), path.Ext(file))
	p := &parser{file: file, sc: bufio.NewScanner(bytes.NewReader(data))}
	p.sc.Buffer(make([]byte, 64<<10), 8<<20)
	if err := p.parse(s); err != nil {
		return nil, err
	}
	return s, s.check()
}

type parser struct {
	file    string
	sc      *bufio.Scanner
	line    int
	pending *string // a line read ahead
}

func (p *parser) next() (string, bool) {
	if p.pending != nil {
		l := *p.pending
		p.pending = nil
		return l, true
	}
	if !p.sc.Scan() {
		return "", false
	}
	p.line++
	return strings.TrimRight(p.sc.Text(), " \t\r"), true
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, p.line, fmt.Sprintf(format, args...))
}

func (p *parser) parse(s *Scenario) error {
	section := 0 // 0 header, 1 inputs, 2 outputs
	for {
		l, ok := p.next()
		if !ok {
			break
		}
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
			continue
		case l == Separator:
			if section == 2 {
				return p.errorf("a second %s separator", Separator)
			}
			section = 2
		case strings.HasPrefix(l, "> "):
			if section == 2 {
				return p.errorf("an input line after the %s separator", Separator)
			}
			section = 1
			if err := p.step(s, l); err != nil {
				return err
			}
		case strings.HasPrefix(l, "< "):
			if section != 2 {
				return p.errorf("an expected-output line before the %s separator", Separator)
			}
			if err := p.expect(s, l); err != nil {
				return err
			}
		case section == 0:
			if err := p.header(s, l); err != nil {
				return err
			}
		default:
			return p.errorf("unexpected line %q (blocks start with '> ' or '< ')", cut(l, 60))
		}
	}
	if err := p.sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", p.file, err)
	}
	if section != 2 {
		return fmt.Errorf("%s: no %s separator", p.file, Separator)
	}
	return nil
}

func (p *parser) header(s *Scenario, l string) error {
	key, val, ok := strings.Cut(l, ":")
	if !ok {
		return p.errorf("header lines are 'key: value', got %q", cut(l, 60))
	}
	val = strings.TrimSpace(val)
	switch strings.TrimSpace(key) {
	case "name":
		s.Name = val
	case "title":
		s.Title = val
	case "source":
		s.Source = val
	case "user":
		s.User = val
	case "requirement":
		id, title, _ := strings.Cut(val, " ")
		if id == "" {
			return p.errorf("requirement needs an id")
		}
		s.Requirements = append(s.Requirements, id)
		s.Titles[id] = strings.TrimSpace(title)
	case "bridge-config":
		for _, kv := range strings.Fields(val) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return p.errorf("bridge-config takes key=value pairs, got %q", kv)
			}
			s.BridgeConfig[k] = v
		}
	case "targets":
		switch val {
		case "inprocess":
			s.InProcessOnly = true
		case "any":
		default:
			return p.errorf("targets is 'any' or 'inprocess', got %q", val)
		}
	case "known-bug":
		s.KnownBug = val
	case "needs":
		for _, n := range strings.Fields(val) {
			switch n {
			case "bot":
				s.NeedsBot = true
			case "agent":
				s.NeedsAgent = true
			default:
				return p.errorf("needs takes 'bot' and 'agent', got %q", n)
			}
		}
	default:
		return p.errorf("unknown header %q", strings.TrimSpace(key))
	}
	return nil
}

// block reads the lines of a block up to the next block, the separator or the end.
func (p *parser) block() []string {
	var lines []string
	for {
		l, ok := p.next()
		if !ok {
			return lines
		}
		if l == Separator || strings.HasPrefix(l, "> ") || strings.HasPrefix(l, "< ") {
			p.pending = &l
			return lines
		}
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		lines = append(lines, l)
	}
}

// jsonValues decodes the JSON values of a block.
func (p *parser) jsonValues(start int, lines []string) ([]any, error) {
	text := strings.Join(lines, "\n")
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var vals []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return vals, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: the block's JSON: %w", p.file, start, err)
		}
		vals = append(vals, v)
	}
}

// fields splits an argument list on spaces, keeping a leading JSON value whole.
func splitArgs(rest string) (pos []string, args map[string]string) {
	args = map[string]string{}
	for _, f := range strings.Fields(rest) {
		if k, v, ok := strings.Cut(f, "="); ok && k != "" && !strings.ContainsAny(k, "/{\"") {
			args[k] = v
			continue
		}
		pos = append(pos, f)
	}
	return pos, args
}

func (p *parser) step(s *Scenario, l string) error {
	start := p.line
	words := strings.SplitN(strings.TrimPrefix(l, "> "), " ", 3)
	if len(words) < 2 {
		return p.errorf("a step is '> party action [arguments]'")
	}
	party, action, rest := words[0], words[1], ""
	if len(words) == 3 {
		rest = words[2]
	}
	if party == "bot" {
		return p.rule(s, action, rest, start)
	}
	st := Step{Line: start, Party: party, Action: action}
	switch party {
	case "customer":
		if _, ok := customerActions[action]; !ok {
			return p.errorf("unknown customer action %q", action)
		}
	case "agent":
		if !agentActions[action] {
			return p.errorf("unknown agent action %q (accept, send, end)", action)
		}
		s.NeedsAgent = true
	}
	st.Pos, st.Args = splitArgs(rest)
	lines := p.block()
	if action == "request" {
		var err error
		if st.Headers, lines, err = p.metaLines(lines); err != nil {
			return err
		}
	}
	vals, err := p.jsonValues(start, lines)
	if err != nil {
		return err
	}
	st.Body = vals
	s.Steps = append(s.Steps, st)
	return nil
}

func (p *parser) rule(s *Scenario, action, rest string, start int) error {
	if action != "on" {
		return p.errorf("the bot's lines are '> bot on TRIGGER [status=N] [delay=D] [via=conversation]'")
	}
	dec := json.NewDecoder(strings.NewReader(rest))
	dec.UseNumber()
	var trigger any
	if err := dec.Decode(&trigger); err != nil {
		return p.errorf("the trigger must be a JSON object: %v", err)
	}
	if _, ok := trigger.(map[string]any); !ok {
		return p.errorf("the trigger must be a JSON object")
	}
	tail, _ := io.ReadAll(dec.Buffered())
	_, args := splitArgs(string(tail))
	r := Rule{Line: start, Trigger: trigger, Status: 200}
	for k, v := range args {
		switch k {
		case "status":
			if _, err := fmt.Sscanf(v, "%d", &r.Status); err != nil || r.Status < 100 || r.Status > 599 {
				return p.errorf("status=%s is not an HTTP status", v)
			}
		case "delay":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > time.Minute {
				return p.errorf("delay=%s is not a duration up to 1m", v)
			}
			r.Delay = d
		case "via":
			if v != "conversation" && v != "reply" {
				return p.errorf("via is 'reply' (default) or 'conversation'")
			}
			r.ToConversation = v == "conversation"
		default:
			return p.errorf("unknown bot argument %q", k)
		}
	}
	vals, err := p.jsonValues(start, p.block())
	if err != nil {
		return err
	}
	for _, v := range vals {
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("%s:%d: the bot's replies must be JSON objects", p.file, start)
		}
	}
	r.Replies = vals
	s.Rules = append(s.Rules, r)
	s.NeedsBot = true
	return nil
}

func (p *parser) expect(s *Scenario, l string) error {
	start := p.line
	words := strings.Fields(strings.TrimPrefix(l, "< "))
	e := Expect{Line: start, Mode: "ordered"}
	var rest []string
	switch {
	case len(words) >= 2 && words[0] == "response":
		e.Kind, e.Label, rest = "response", words[1], words[2:]
	case len(words) >= 2 && words[0] == "stream":
		e.Kind, e.Label, rest = "stream", words[1], words[2:]
	case len(words) >= 2 && words[0] == "customer" && words[1] == "sees":
		e.Kind, e.Party, rest = "sees", "customer", words[2:]
	case len(words) >= 2 && words[1] == "receives":
		e.Kind, e.Party, rest = "receives", words[0], words[2:]
		switch e.Party {
		case "bot":
			s.NeedsBot = true
		case "agent":
			s.NeedsAgent = true
		}
	default:
		return p.errorf("expected output blocks are '< response LABEL', '< customer sees', '< PARTY receives' or '< stream LABEL'")
	}
	for _, w := range rest {
		switch {
		case w == "exactly" || w == "ordered" || w == "unordered":
			e.Mode = w
		case strings.HasPrefix(w, "req="):
			e.Reqs = strings.Split(strings.TrimPrefix(w, "req="), ",")
		default:
			return p.errorf("unknown word %q (modes: exactly, ordered, unordered; req=ID,…)", w)
		}
	}
	lines := p.block()
	if e.Kind == "response" {
		var meta [][2]string
		var err error
		if meta, lines, err = p.metaLines(lines); err != nil {
			return err
		}
		for _, kv := range meta {
			if kv[0] != "status" {
				e.Headers = append(e.Headers, kv)
				continue
			}
			for _, f := range strings.Fields(kv[1]) {
				var n int
				if _, err := fmt.Sscanf(f, "%d", &n); err != nil {
					return p.errorf("status %q is not a number", f)
				}
				e.Status = append(e.Status, n)
			}
		}
	}
	vals, err := p.jsonValues(start, lines)
	if err != nil {
		return err
	}
	if e.Kind == "response" && len(vals) > 1 {
		return fmt.Errorf("%s:%d: a response block has one JSON body", p.file, start)
	}
	e.Values = vals
	s.Expects = append(s.Expects, e)
	return nil
}

// metaLines splits the "Name: value" lines at the start of a block from its JSON.
func (p *parser) metaLines(lines []string) ([][2]string, []string, error) {
	var meta [][2]string
	for len(lines) > 0 && !strings.HasPrefix(lines[0], "{") && !strings.HasPrefix(lines[0], "[") && !strings.HasPrefix(lines[0], "\"") {
		k, v, ok := strings.Cut(lines[0], ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, nil, p.errorf("%q is neither a 'Name: value' line nor JSON", cut(lines[0], 60))
		}
		meta = append(meta, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		lines = lines[1:]
	}
	return meta, lines, nil
}

// check validates what needs the whole file: labels are unique and expected ones exist.
func (s *Scenario) check() error {
	if len(s.Requirements) == 0 {
		return fmt.Errorf("%s: a scenario names at least one requirement", s.File)
	}
	labels := map[string]string{}
	for _, st := range s.Steps {
		if l := st.Label(); l != "" {
			if _, dup := labels[l]; dup {
				return fmt.Errorf("%s:%d: label %q is used twice", s.File, st.Line, l)
			}
			labels[l] = st.Action
		}
	}
	for _, e := range s.Expects {
		action, ok := labels[e.Label]
		switch {
		case e.Kind == "response" && !ok:
			return fmt.Errorf("%s:%d: no step is labelled %q (as=%s)", s.File, e.Line, e.Label, e.Label)
		case e.Kind == "stream" && action != "stream":
			return fmt.Errorf("%s:%d: %q is not a stream step's label", s.File, e.Line, e.Label)
		}
	}
	return nil
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Load parses every *.scenario file at the top of fsys, in name order.
func Load(fsys fs.FS) ([]*Scenario, error) {
	names, err := fs.Glob(fsys, "*.scenario")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []*Scenario
	seen := map[string]string{}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		s, err := Parse(n, b)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[s.Name]; dup {
			return nil, fmt.Errorf("%s: scenario name %q is also used by %s", n, s.Name, prev)
		}
		seen[s.Name] = n
		out = append(out, s)
	}
	return out, nil
}
