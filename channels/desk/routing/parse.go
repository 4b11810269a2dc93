package routing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxDepth bounds how deeply a configuration document (and so a condition tree) may nest.
const maxDepth = 64

// ParseConfig reads a YAML configuration and validates it. name is the file name used in error
// messages. Every problem found is reported in a *ConfigError, each as file:line:column and what
// is wrong.
func ParseConfig(name string, data []byte) (*Config, error) {
	p := &parser{problems: problems{file: name}}
	cfg := p.document(data)
	if err := p.err(); err != nil {
		return nil, err
	}
	cfg.File = name
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parser turns a YAML node tree into a Config, recording shape problems (unknown fields, wrong
// kinds of values) with their positions. Meaning (references, types of rule values, ranges) is
// Validate's job.
type parser struct {
	problems
}

var yamlLine = regexp.MustCompile(`^yaml: (?:unmarshal errors:\s*)?line (\d+): (.*)$`)

// yamlError records a syntax error from the YAML library, keeping the line it names.
func (p *parser) yamlError(err error) {
	msg := strings.TrimSpace(err.Error())
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.add(Pos{Line: line}, "invalid YAML: %s", m[2])
		return
	}
	p.add(Pos{}, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

func (p *parser) document(data []byte) *Config {
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(Pos{Line: 1}, "the file is empty: at least one workstream is required")
		} else {
			p.yamlError(err)
		}
		return cfg
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.add(pos(&extra), "a second YAML document: the configuration is one document")
		return cfg
	} else if !errors.Is(err, io.EOF) {
		p.yamlError(err)
		return cfg
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if !p.plain(root, 0) {
		return cfg
	}
	cfg.Pos = pos(root)
	f := p.fields(root, "the configuration", "workstreams", "queues", "capacity_profiles", "agents", "bots",
		"messages", "average_wait_min_conversations", "desk_grace")
	cfg.at = positions(f)
	for _, n := range p.list(f["workstreams"], "workstreams") {
		cfg.Workstreams = append(cfg.Workstreams, p.workstream(n))
	}
	for _, n := range p.list(f["queues"], "queues") {
		cfg.Queues = append(cfg.Queues, p.queue(n))
	}
	for _, n := range p.list(f["capacity_profiles"], "capacity_profiles") {
		g := p.fields(n, "a capacity profile", "name", "max_units")
		cfg.CapacityProfiles = append(cfg.CapacityProfiles, CapacityProfile{
			Name: p.str(g["name"]), MaxUnits: p.integer(g["max_units"]), Pos: pos(n), at: positions(g)})
	}
	for _, n := range p.list(f["agents"], "agents") {
		cfg.Agents = append(cfg.Agents, p.agent(n))
	}
	for _, n := range p.list(f["bots"], "bots") {
		g := p.fields(n, "a bot", "id", "name")
		cfg.Bots = append(cfg.Bots, Bot{ID: p.str(g["id"]), Name: p.str(g["name"]), Pos: pos(n)})
	}
	if n := f["messages"]; n != nil {
		cfg.Messages = map[Trigger]string{}
		known := DefaultMessages()
		p.each(n, "messages", func(k, v *yaml.Node) {
			if _, ok := known[Trigger(k.Value)]; !ok {
				p.add(pos(k), "unknown automated message trigger %q (known: %s)", k.Value, strings.Join(triggerNames(), ", "))
				return
			}
			cfg.Messages[Trigger(k.Value)] = p.text(v)
			cfg.at["messages."+k.Value] = pos(v)
		})
	}
	cfg.AverageWaitMinConversations = p.integer(f["average_wait_min_conversations"])
	cfg.DeskGrace = p.duration(f["desk_grace"])
	return cfg
}

func (p *parser) workstream(n *yaml.Node) Workstream {
	f := p.fields(n, "a workstream", "name", "bot", "variables", "rules", "fallback_queue", "capacity",
		"allowed_presences", "auto_accept", "offer_timeout", "reoffer_after_decline",
		"show_queue_position", "show_average_wait_time")
	w := Workstream{
		Name: p.str(f["name"]), Bot: p.str(f["bot"]), FallbackQueue: p.str(f["fallback_queue"]),
		AutoAccept: p.boolean(f["auto_accept"]), OfferTimeout: p.duration(f["offer_timeout"]),
		ReofferAfterDecline: p.duration(f["reoffer_after_decline"]),
		ShowQueuePosition:   p.boolean(f["show_queue_position"]), ShowAverageWaitTime: p.boolean(f["show_average_wait_time"]),
		Pos: pos(n), at: positions(f),
	}
	if v := f["variables"]; v != nil {
		p.each(v, "variables (name: type)", func(k, t *yaml.Node) {
			typ, ok := parseType(p.str(t))
			if !ok && t.Kind == yaml.ScalarNode {
				p.add(pos(t), "variable %q: unknown type %q (string, integer, number or boolean)", k.Value, t.Value)
			}
			w.Variables = append(w.Variables, Variable{Name: k.Value, Type: typ, Pos: pos(k)})
		})
	}
	for _, r := range p.list(f["rules"], "rules") {
		g := p.fields(r, "a route-to-queue rule", "name", "when", "queue")
		rule := Rule{Name: p.str(g["name"]), Queue: p.str(g["queue"]), Pos: pos(r), at: positions(g)}
		if g["when"] != nil {
			rule.When = p.condition(g["when"])
		}
		w.Rules = append(w.Rules, rule)
	}
	if c := f["capacity"]; c != nil {
		g := p.fields(c, "capacity", "units", "profile")
		w.Capacity = Capacity{Units: p.integer(g["units"]), Profile: p.str(g["profile"]), Pos: pos(c)}
	}
	for _, a := range p.list(f["allowed_presences"], "allowed_presences") {
		pr, ok := ParsePresence(p.str(a))
		if !ok && a.Kind == yaml.ScalarNode {
			p.add(pos(a), "unknown presence %q (Available, Busy, Busy-DND, Away)", a.Value)
			continue
		}
		w.at[fmt.Sprintf("allowed_presences.%d", len(w.AllowedPresences))] = pos(a)
		w.AllowedPresences = append(w.AllowedPresences, pr)
	}
	return w
}

func (p *parser) condition(n *yaml.Node) Condition {
	c := Condition{Pos: pos(n)}
	f := p.fields(n, "a condition", "var", "op", "value", "all", "any")
	c.at = positions(f)
	c.Var = p.str(f["var"])
	if o := f["op"]; o != nil {
		s := p.str(o)
		if op, ok := ParseOperator(s); ok {
			c.Op = op
		} else {
			c.Op = Operator(s) // Validate reports it
		}
	}
	if v := f["value"]; v != nil {
		if v.Kind == yaml.SequenceNode {
			c.Values = []Value{}
			for i, e := range v.Content {
				c.at[fmt.Sprintf("value.%d", i)] = pos(e)
				c.Values = append(c.Values, p.value(e))
			}
		} else {
			c.Value = p.value(v)
		}
	}
	for _, group := range []struct {
		key string
		dst *[]Condition
	}{{"all", &c.All}, {"any", &c.Any}} {
		key, dst := group.key, group.dst
		g := f[key]
		if g == nil {
			continue
		}
		items := p.list(g, key)
		if len(items) == 0 && g.Kind == yaml.SequenceNode {
			p.add(pos(g), "%s needs at least one condition", key)
		}
		for _, e := range items {
			*dst = append(*dst, p.condition(e))
		}
	}
	return c
}

func (p *parser) queue(n *yaml.Node) Queue {
	f := p.fields(n, "a queue", "name", "assignment", "priority", "agents", "bots", "overflow")
	q := Queue{Name: p.str(f["name"]), Assignment: AssignmentMethod(p.str(f["assignment"])),
		Priority: p.integer(f["priority"]), Pos: pos(n), at: positions(f)}
	for i, a := range p.list(f["agents"], "agents") {
		q.at[fmt.Sprintf("agents.%d", i)] = pos(a)
		q.Agents = append(q.Agents, p.str(a))
	}
	for i, b := range p.list(f["bots"], "bots") {
		q.at[fmt.Sprintf("bots.%d", i)] = pos(b)
		q.Bots = append(q.Bots, p.str(b))
	}
	if o := f["overflow"]; o != nil {
		g := p.fields(o, "overflow", "work_item_limit", "waiting_time")
		if r := g["work_item_limit"]; r != nil {
			h := p.fields(r, "work_item_limit", "limit", "action", "queue", "message")
			q.Overflow.WorkItemLimit = &OverflowRule{Limit: p.integer(h["limit"]), Action: OverflowAction(p.str(h["action"])),
				Queue: p.str(h["queue"]), Message: p.text(h["message"]), Pos: pos(r), at: positions(h)}
		}
		if r := g["waiting_time"]; r != nil {
			h := p.fields(r, "waiting_time", "exceeds", "action", "queue", "message")
			q.Overflow.WaitingTime = &OverflowRule{Exceeds: p.duration(h["exceeds"]), Action: OverflowAction(p.str(h["action"])),
				Queue: p.str(h["queue"]), Message: p.text(h["message"]), Pos: pos(r), at: positions(h)}
		}
	}
	return q
}

func (p *parser) agent(n *yaml.Node) Agent {
	f := p.fields(n, "an agent", "id", "name", "capacity", "profiles", "presence")
	a := Agent{ID: p.str(f["id"]), Name: p.str(f["name"]), Capacity: p.integer(f["capacity"]), Pos: pos(n), at: positions(f)}
	if v := f["presence"]; v != nil {
		pr, ok := ParsePresence(p.str(v))
		if !ok && v.Kind == yaml.ScalarNode {
			p.add(pos(v), "unknown presence %q (Available, Busy, Busy-DND, Away, Offline)", v.Value)
		}
		a.Presence = pr
	}
	switch v := f["profiles"]; {
	case v == nil:
	case v.Kind == yaml.SequenceNode: // [Chat, Voice]
		for _, e := range v.Content {
			a.Profiles = append(a.Profiles, AgentProfile{Profile: p.str(e), Pos: pos(e)})
		}
	default: // {Chat: 3, Voice: null}
		p.each(v, "profiles (a list of names, or name: custom limit)", func(k, lim *yaml.Node) {
			ap := AgentProfile{Profile: k.Value, Pos: pos(k)}
			if lim.ShortTag() != "!!null" {
				ap.MaxUnits = p.integer(lim)
			}
			a.Profiles = append(a.Profiles, ap)
		})
	}
	return a
}

// plain checks the tree once: no aliases (they would let a small file expand without bound) and
// no deeper nesting than maxDepth.
func (p *parser) plain(n *yaml.Node, depth int) bool {
	if n.Kind == yaml.AliasNode {
		p.add(pos(n), "YAML aliases (*name) are not supported: write the value out")
		return false
	}
	if depth > maxDepth {
		p.add(pos(n), "the document nests deeper than %d levels", maxDepth)
		return false
	}
	for _, c := range n.Content {
		if !p.plain(c, depth+1) {
			return false
		}
	}
	return true
}

// fields reads a mapping with the given keys, reporting unknown and repeated keys. It returns
// an empty map for a missing node or after reporting a node of another kind.
func (p *parser) fields(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n == nil {
		return out
	}
	p.each(n, what, func(k, v *yaml.Node) {
		switch {
		case !slices.Contains(known, k.Value):
			p.add(pos(k), "unknown field %q in %s (known: %s)", k.Value, what, strings.Join(known, ", "))
		case out[k.Value] != nil:
			p.add(pos(k), "field %q appears twice in %s", k.Value, what)
		default:
			out[k.Value] = v
		}
	})
	return out
}

// each calls fn for each key and value of a mapping, keys being scalars. Repeated keys are
// reported; fn sees only the first. A missing or null node is an empty mapping.
func (p *parser) each(n *yaml.Node, what string, fn func(k, v *yaml.Node)) {
	if n == nil || n.ShortTag() == "!!null" {
		return // an empty value is an absent one
	}
	if n.Kind != yaml.MappingNode {
		p.add(pos(n), "%s must be a mapping (key: value), not %s", what, kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.add(pos(k), "a key in %s must be a plain name, not %s", what, kindName(k))
			continue
		}
		if seen[k.Value] {
			p.add(pos(k), "key %q appears twice in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		fn(k, v)
	}
}

// list returns a sequence's items; nil for a missing node or after reporting another kind.
func (p *parser) list(n *yaml.Node, what string) []*yaml.Node {
	if n == nil || n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(pos(n), "%s must be a list, not %s", what, kindName(n))
		return nil
	}
	return n.Content
}

// str reads a name or other scalar as text; null and missing are "".
func (p *parser) str(n *yaml.Node) string {
	if n == nil || n.ShortTag() == "!!null" {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		p.add(pos(n), "expected a single value, not %s", kindName(n))
		return ""
	}
	return n.Value
}

// text reads a message text, which must be a string.
func (p *parser) text(n *yaml.Node) string {
	if n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!str" && n.ShortTag() != "!!null" {
		p.add(pos(n), "expected text, not %s %s: quote it", tagName(n), n.Value)
		return ""
	}
	return p.str(n)
}

func (p *parser) integer(n *yaml.Node) int {
	if n == nil || n.ShortTag() == "!!null" {
		return 0
	}
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		p.add(pos(n), "expected a whole number, not %s %s", tagName(n), shorten(n.Value))
		return 0
	}
	return i
}

func (p *parser) boolean(n *yaml.Node) bool {
	if n == nil || n.ShortTag() == "!!null" {
		return false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.add(pos(n), "expected true or false, not %s %s", tagName(n), shorten(n.Value))
		return false
	}
	return b
}

var daysPrefix = regexp.MustCompile(`^(\d{1,4})d(.*)$`)

// duration reads a duration with a unit: "90s", "5m", "1h30m", "2d".
func (p *parser) duration(n *yaml.Node) time.Duration {
	if n == nil || n.ShortTag() == "!!null" {
		return 0
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.add(pos(n), "expected a duration with a unit such as 90s, 5m, 2h or 2d, not %s %s", tagName(n), shorten(n.Value))
		return 0
	}
	s := strings.TrimSpace(n.Value)
	var d time.Duration
	if m := daysPrefix.FindStringSubmatch(s); m != nil {
		days, _ := strconv.Atoi(m[1])
		d, s = time.Duration(days)*24*time.Hour, m[2]
		if s == "" {
			return d
		}
	}
	rest, err := time.ParseDuration(s)
	if err != nil {
		p.add(pos(n), "invalid duration %q: use a unit such as 90s, 5m, 2h or 2d", shorten(n.Value))
		return 0
	}
	return d + rest
}

// value reads a rule operand, typed by its YAML tag: a quoted or plain string, an integer, a
// float or a boolean.
func (p *parser) value(n *yaml.Node) Value {
	if n.Kind != yaml.ScalarNode {
		p.add(pos(n), "a value must be a single string, number or boolean, not %s", kindName(n))
		return Value{}
	}
	switch n.ShortTag() {
	case "!!str":
		return String(n.Value)
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			p.add(pos(n), "integer %s does not fit in 64 bits", shorten(n.Value))
			return Value{}
		}
		return Integer(i)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			p.add(pos(n), "number %s is not a finite number", shorten(n.Value))
			return Value{}
		}
		return Number(f)
	case "!!bool":
		var b bool
		_ = n.Decode(&b)
		return Boolean(b)
	case "!!null":
		p.add(pos(n), "the value is empty")
		return Value{}
	}
	p.add(pos(n), "unsupported value %s %s", tagName(n), shorten(n.Value))
	return Value{}
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Column: n.Column} }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return tagName(n) + " " + shorten(n.Value)
}

func tagName(n *yaml.Node) string {
	switch n.ShortTag() {
	case "!!str":
		return "the text"
	case "!!int":
		return "the integer"
	case "!!float":
		return "the number"
	case "!!bool":
		return "the boolean"
	case "!!null":
		return "null"
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	}
	return "the value"
}

func shorten(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40] + "…")
	}
	return s
}

func triggerNames() []string {
	var names []string
	for t := range DefaultMessages() {
		names = append(names, string(t))
	}
	slices.Sort(names)
	return names
}
