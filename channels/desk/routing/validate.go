package routing

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Limits of the configuration, from Omnichannel where it has one.
const (
	maxVariableName     = 100 // characters in a context variable's name
	maxValueLength      = 4000
	minWaitingOverflow  = time.Minute    // messaging: 1 minute …
	maxWaitingOverflow  = 48 * time.Hour // … to 2 days
	maxWorkItemLimit    = 100
	defaultOfferTimeout = 120 * time.Second
	defaultReoffer      = 2 * time.Minute
	defaultMinWaitConvs = 20
)

// Validate checks the configuration and fills in defaults. It reports every problem found in a
// *ConfigError, each with the position it was read from (when it was read from a file). It is
// idempotent: a validated Config validates again unchanged.
func (c *Config) Validate() error {
	v := &validator{problems: problems{file: c.File}, cfg: c}
	if v.file == "" {
		v.file = "config"
	}
	v.run()
	return v.err()
}

type validator struct {
	problems
	cfg      *Config
	queues   map[string]bool
	profiles map[string]bool
	agents   map[string]bool
	bots     map[string]bool
}

func (v *validator) run() {
	c := v.cfg
	if len(c.Workstreams) == 0 {
		v.add(c.Pos, "no workstreams: at least one is required")
	}
	v.queues = v.names("queue", len(c.Queues), func(i int) (string, Pos) { return c.Queues[i].Name, c.Queues[i].Pos })
	v.profiles = v.names("capacity profile", len(c.CapacityProfiles), func(i int) (string, Pos) {
		return c.CapacityProfiles[i].Name, c.CapacityProfiles[i].Pos
	})
	v.agents = v.names("agent", len(c.Agents), func(i int) (string, Pos) { return c.Agents[i].ID, c.Agents[i].Pos })
	v.bots = v.names("bot", len(c.Bots), func(i int) (string, Pos) { return c.Bots[i].ID, c.Bots[i].Pos })
	for _, b := range c.Bots {
		if v.agents[b.ID] {
			v.add(b.Pos, "bot %q has the id of an agent: users need distinct ids", b.ID)
		}
	}
	v.names("workstream", len(c.Workstreams), func(i int) (string, Pos) { return c.Workstreams[i].Name, c.Workstreams[i].Pos })
	for i := range c.Workstreams {
		v.workstream(&c.Workstreams[i])
	}
	for i := range c.Queues {
		v.queue(&c.Queues[i])
	}
	for i := range c.CapacityProfiles {
		if p := &c.CapacityProfiles[i]; p.MaxUnits < 1 {
			v.add(p.at.get("max_units", p.Pos), "capacity profile %q: max_units must be at least 1", p.Name)
		}
	}
	for i := range c.Agents {
		v.agent(&c.Agents[i])
	}
	for i := range c.Bots {
		if c.Bots[i].Name == "" {
			c.Bots[i].Name = c.Bots[i].ID
		}
	}
	for _, t := range sortedTriggers(c.Messages) {
		at := c.at.get("messages."+string(t), c.Pos)
		if _, ok := DefaultMessages()[t]; !ok {
			v.add(at, "messages: unknown trigger %q", t)
		} else if slug := checkTemplate(c.Messages[t]); slug != "" {
			v.add(at, "messages: %s: unknown slug %s (known: {AgentName}, {QueueName}, {QueuePosition}, {PeopleAhead}, {AverageWaitTime}, {$ContextVariable$})", t, slug)
		}
	}
	switch {
	case c.AverageWaitMinConversations == 0:
		c.AverageWaitMinConversations = defaultMinWaitConvs
	case c.AverageWaitMinConversations < 0:
		v.add(c.at.get("average_wait_min_conversations", c.Pos), "average_wait_min_conversations must be positive")
	}
	if c.DeskGrace < 0 {
		v.add(c.at.get("desk_grace", c.Pos), "desk_grace must be positive")
	}
}

// names checks that each name is set and unique, and returns the set of names.
func (v *validator) names(what string, n int, at func(int) (string, Pos)) map[string]bool {
	seen := map[string]Pos{}
	for i := range n {
		name, p := at(i)
		if strings.TrimSpace(name) == "" {
			v.add(p, "%s %d has no name", what, i+1)
			continue
		}
		if first, dup := seen[name]; dup {
			v.add(p, "duplicate %s %q (first defined at line %d)", what, name, first.Line)
			continue
		}
		seen[name] = p
	}
	out := make(map[string]bool, len(seen))
	for name := range seen {
		out[name] = true
	}
	return out
}

func (v *validator) workstream(w *Workstream) {
	what := fmt.Sprintf("workstream %q", w.Name)
	switch {
	case w.FallbackQueue == "":
		v.add(w.Pos, "%s has no fallback_queue: every workstream needs one", what)
	case !v.queues[w.FallbackQueue]:
		v.add(w.at.get("fallback_queue", w.Pos), "%s: fallback_queue %q is not a queue", what, w.FallbackQueue)
	}
	if w.Bot != "" && !v.bots[w.Bot] {
		v.add(w.at.get("bot", w.Pos), "%s: bot %q is not a bot (agents cannot be a workstream's bot)", what, w.Bot)
	}
	switch cp := w.Capacity; {
	case cp.Units < 0:
		v.add(pick(cp.Pos, w.Pos), "%s: capacity units must be positive", what)
	case cp.Units > 0 && cp.Profile != "":
		v.add(pick(cp.Pos, w.Pos), "%s: capacity is either units or a profile, not both", what)
	case cp.Units == 0 && cp.Profile == "":
		v.add(pick(cp.Pos, w.Pos), "%s has no capacity: set capacity.units or capacity.profile", what)
	case cp.Profile != "" && !v.profiles[cp.Profile]:
		v.add(pick(cp.Pos, w.Pos), "%s: capacity profile %q is not defined", what, cp.Profile)
	}
	if len(w.AllowedPresences) == 0 {
		w.AllowedPresences = []Presence{Available, Busy}
	}
	for i, p := range w.AllowedPresences {
		at := w.at.get(fmt.Sprintf("allowed_presences.%d", i), w.Pos)
		switch {
		case !p.Valid():
			v.add(at, "%s: unknown allowed presence %q", what, p)
		case p == Offline:
			v.add(at, "%s: Offline cannot be an allowed presence", what)
		case slices.Contains(w.AllowedPresences[:i], p):
			v.add(at, "%s: allowed presence %s appears twice", what, p)
		}
	}
	if w.OfferTimeout == 0 {
		w.OfferTimeout = defaultOfferTimeout
	} else if w.OfferTimeout < 0 {
		v.add(w.at.get("offer_timeout", w.Pos), "%s: offer_timeout must be positive", what)
	}
	if w.ReofferAfterDecline == 0 {
		w.ReofferAfterDecline = defaultReoffer
	} else if w.ReofferAfterDecline < 0 {
		v.add(w.at.get("reoffer_after_decline", w.Pos), "%s: reoffer_after_decline must be positive", what)
	}
	vars := map[string]Type{} // an invalid type is kept as "invalid", so conditions on it say nothing more
	for i := range w.Variables {
		x := &w.Variables[i]
		t, ok := parseType(string(x.Type))
		switch {
		case x.Name == "":
			v.add(x.Pos, "%s: a variable has no name", what)
		case len([]rune(x.Name)) > maxVariableName:
			v.add(x.Pos, "%s: variable name %.20q… is longer than %d characters", what, x.Name, maxVariableName)
		case vars[x.Name] != "":
			v.add(x.Pos, "%s: duplicate variable %q", what, x.Name)
		case x.Type == "":
			v.add(x.Pos, "%s: variable %q has no type", what, x.Name)
		case !ok:
			v.add(x.Pos, "%s: variable %q has unknown type %q", what, x.Name, x.Type)
		}
		if ok {
			x.Type = t // "text" becomes "string"
		} else {
			t = "invalid"
		}
		if x.Name != "" && vars[x.Name] == "" {
			vars[x.Name] = t
		}
	}
	ruleNames := map[string]bool{}
	for i := range w.Rules {
		r := &w.Rules[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("rule %d", i+1)
		}
		if ruleNames[r.Name] {
			v.add(r.Pos, "%s: duplicate rule name %q", what, r.Name)
		}
		ruleNames[r.Name] = true
		rw := fmt.Sprintf("%s, rule %q", what, r.Name)
		switch {
		case r.Queue == "":
			v.add(r.Pos, "%s has no queue", rw)
		case !v.queues[r.Queue]:
			v.add(r.at.get("queue", r.Pos), "%s: queue %q is not a queue", rw, r.Queue)
		}
		if r.When.Var == "" && len(r.When.All) == 0 && len(r.When.Any) == 0 && r.When.Op == "" {
			v.add(pick(r.When.Pos, r.Pos), "%s has no condition (when)", rw)
			continue
		}
		v.condition(rw, vars, &r.When, 0)
	}
}

// condition checks one condition node: its shape, its variable, its operator, and that its
// operands have the variable's type. Integer operands of number variables become numbers.
func (v *validator) condition(what string, vars map[string]Type, c *Condition, depth int) {
	if depth > maxDepth {
		v.add(c.Pos, "%s: conditions nest deeper than %d levels", what, maxDepth)
		return
	}
	set := 0
	for _, b := range []bool{c.Var != "" || c.Op != "", len(c.All) > 0, len(c.Any) > 0} {
		if b {
			set++
		}
	}
	if set != 1 {
		v.add(c.Pos, "%s: a condition has exactly one of var (with op), all or any", what)
		return
	}
	for i := range c.All {
		v.condition(what, vars, &c.All[i], depth+1)
	}
	for i := range c.Any {
		v.condition(what, vars, &c.Any[i], depth+1)
	}
	if len(c.All)+len(c.Any) > 0 {
		return
	}
	t, declared := vars[c.Var]
	switch {
	case c.Var == "":
		v.add(c.Pos, "%s: the condition has no var", what)
		return
	case !declared:
		hint := ""
		for name := range vars {
			if strings.EqualFold(name, c.Var) {
				hint = fmt.Sprintf(" (names are case-sensitive: did you mean %q?)", name)
			}
		}
		v.add(c.at.get("var", c.Pos), "%s: variable %q is not declared in the workstream%s", what, c.Var, hint)
		return
	case c.Op == "":
		v.add(c.Pos, "%s: the condition on %q has no op", what, c.Var)
		return
	case t == "invalid":
		return
	}
	if _, ok := operatorAliases[string(c.Op)]; !ok || operatorAliases[string(c.Op)] != c.Op {
		v.add(c.at.get("op", c.Pos), "%s: unknown operator %q (equals, not_equals, contains, not_contains, begins_with, ends_with, in, not_in, greater_than, greater_or_equal, less_than, less_or_equal, exists, not_exists)", what, c.Op)
		return
	}
	if !c.Op.accepts(t) {
		v.add(c.at.get("op", c.Pos), "%s: operator %s does not apply to %s variable %q", what, c.Op, t, c.Var)
		return
	}
	switch c.Op.operand() {
	case operandNone:
		if !c.Value.IsZero() || c.Values != nil {
			v.add(c.at.get("value", c.Pos), "%s: operator %s takes no value", what, c.Op)
		}
	case operandList:
		if !c.Value.IsZero() || len(c.Values) == 0 {
			v.add(c.at.get("value", c.Pos), "%s: operator %s needs a non-empty list of values", what, c.Op)
		}
		for i := range c.Values {
			v.operand(what, c, t, &c.Values[i], c.at.get(fmt.Sprintf("value.%d", i), c.at.get("value", c.Pos)))
		}
	case operandOne:
		if c.Values != nil {
			v.add(c.at.get("value", c.Pos), "%s: operator %s takes one value, not a list (use in)", what, c.Op)
		} else if c.Value.IsZero() {
			v.add(c.Pos, "%s: operator %s on %q needs a value", what, c.Op, c.Var)
		} else {
			v.operand(what, c, t, &c.Value, c.at.get("value", c.Pos))
		}
	}
}

// operand checks that a rule value has its variable's type.
func (v *validator) operand(what string, c *Condition, t Type, x *Value, at Pos) {
	if x.IsZero() {
		return // already reported by the parser
	}
	ok := x.Type() == t || (t == TypeNumber && x.Type() == TypeInteger)
	if !ok {
		hint := ""
		if t == TypeString {
			hint = `: quote it ("` + x.String() + `")`
		}
		v.add(at, "%s: %s variable %q compared with %s %s%s", what, t, c.Var, x.Type(), x.String(), hint)
		return
	}
	if t == TypeNumber {
		*x, _ = x.As(TypeNumber)
	}
	if s, isStr := x.Str(); isStr && len(s) > maxValueLength {
		v.add(at, "%s: value longer than %d characters", what, maxValueLength)
	}
}

func (v *validator) queue(q *Queue) {
	what := fmt.Sprintf("queue %q", q.Name)
	switch q.Assignment {
	case "":
		q.Assignment = HighestCapacity
	case HighestCapacity, AdvancedRoundRobin:
	default:
		v.add(q.at.get("assignment", q.Pos), "%s: unknown assignment method %q (highest_capacity or advanced_round_robin)", what, q.Assignment)
	}
	if q.Priority == 0 {
		q.Priority = 1
	} else if q.Priority < 0 {
		v.add(q.at.get("priority", q.Pos), "%s: priority must be positive (1 is served first)", what)
	}
	for i, a := range q.Agents {
		at := q.at.get(fmt.Sprintf("agents.%d", i), q.Pos)
		switch {
		case !v.agents[a]:
			v.add(at, "%s: agent %q is not an agent", what, a)
		case slices.Contains(q.Agents[:i], a):
			v.add(at, "%s: agent %q is listed twice", what, a)
		}
	}
	for i, b := range q.Bots {
		at := q.at.get(fmt.Sprintf("bots.%d", i), q.Pos)
		switch {
		case !v.bots[b]:
			v.add(at, "%s: bot %q is not a bot", what, b)
		case slices.Contains(q.Bots[:i], b):
			v.add(at, "%s: bot %q is listed twice", what, b)
		}
	}
	if r := q.Overflow.WorkItemLimit; r != nil {
		at := pick(r.Pos, q.Pos)
		if r.Limit < 1 || r.Limit > maxWorkItemLimit {
			v.add(r.at.get("limit", at), "%s: work_item_limit.limit must be between 1 and %d", what, maxWorkItemLimit)
		}
		v.overflowAction(what+": work_item_limit", q.Name, r, at, true)
	}
	if r := q.Overflow.WaitingTime; r != nil {
		at := pick(r.Pos, q.Pos)
		if r.Exceeds < minWaitingOverflow || r.Exceeds > maxWaitingOverflow {
			v.add(r.at.get("exceeds", at), "%s: waiting_time.exceeds must be between 1m and 2d (48h)", what)
		}
		v.overflowAction(what+": waiting_time", q.Name, r, at, false)
	}
}

func (v *validator) overflowAction(what, self string, r *OverflowRule, at Pos, assignAnyway bool) {
	switch r.Action {
	case OverflowEnd:
		if slug := checkTemplate(r.Message); slug != "" {
			v.add(r.at.get("message", at), "%s: unknown slug %s in message", what, slug)
		}
	case OverflowTransfer:
		switch {
		case r.Queue == "":
			v.add(at, "%s: transfer_to_queue needs a queue", what)
		case !v.queues[r.Queue]:
			v.add(r.at.get("queue", at), "%s: queue %q is not a queue", what, r.Queue)
		case r.Queue == self:
			v.add(r.at.get("queue", at), "%s: a queue cannot overflow into itself", what)
		}
	case OverflowAssignAnyway:
		if !assignAnyway {
			v.add(r.at.get("action", at), "%s: assign_anyway is only for work_item_limit", what)
		}
	case "":
		v.add(at, "%s has no action", what)
	default:
		v.add(r.at.get("action", at), "%s: unknown action %q (end_conversation, transfer_to_queue or assign_anyway)", what, r.Action)
	}
	if r.Action != OverflowTransfer && r.Queue != "" {
		v.add(at, "%s: queue is only for transfer_to_queue", what)
	}
	if r.Action != OverflowEnd && r.Message != "" {
		v.add(at, "%s: message is only for end_conversation", what)
	}
}

func (v *validator) agent(a *Agent) {
	what := fmt.Sprintf("agent %q", a.ID)
	if a.Name == "" {
		a.Name = a.ID
	}
	if a.Capacity < 0 {
		v.add(a.at.get("capacity", a.Pos), "%s: capacity must be positive", what)
	}
	if a.Capacity == 0 && len(a.Profiles) == 0 {
		v.add(a.Pos, "%s has no capacity: set capacity (units) or profiles, or the agent can never take work", what)
	}
	switch {
	case a.Presence == "":
		a.Presence = Available
	case !a.Presence.Valid():
		v.add(a.Pos, "%s: unknown presence %q", what, a.Presence)
	}
	for i, p := range a.Profiles {
		at := pick(p.Pos, a.Pos)
		switch {
		case !v.profiles[p.Profile]:
			v.add(at, "%s: capacity profile %q is not defined", what, p.Profile)
		case p.MaxUnits < 0:
			v.add(at, "%s: custom limit of %q must be positive", what, p.Profile)
		}
		for _, q := range a.Profiles[:i] {
			if q.Profile == p.Profile {
				v.add(at, "%s: capacity profile %q is listed twice", what, p.Profile)
			}
		}
	}
}

func pick(p, fallback Pos) Pos {
	if p.Line > 0 {
		return p
	}
	return fallback
}

func sortedTriggers(m map[Trigger]string) []Trigger {
	keys := make([]Trigger, 0, len(m))
	for t := range m {
		keys = append(keys, t)
	}
	slices.Sort(keys)
	return keys
}
