package routing

import (
	_ "embed"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the routing configuration: workstreams with their context variables and
// route-to-queue rules, queues, capacity profiles, agents, bots and automated messages. Build it
// with ParseConfig or LoadConfig (which validate it), or in code and then call Validate. A Config
// must not be changed once an Engine uses it.
type Config struct {
	// File names the source in error messages ("routing.yaml"). ParseConfig sets it.
	File string
	// Workstreams route conversations; the first one is the default for work items that name
	// none. At least one is required.
	Workstreams []Workstream
	// Queues hold waiting conversations and assign them to their members.
	Queues []Queue
	// CapacityProfiles limit how many conversations of a kind an agent holds at once.
	CapacityProfiles []CapacityProfile
	// Agents are the human representatives.
	Agents []Agent
	// Bots are bot users: a workstream's first user, or members of a queue.
	Bots []Bot
	// Messages overrides the text of automated messages, by trigger. A trigger missing here gets
	// its default text (see DefaultMessages); an empty text turns the message off.
	Messages map[Trigger]string
	// AverageWaitMinConversations is how many connected conversations a queue needs before
	// customers are told its average wait time. Default: 20, as in Omnichannel.
	AverageWaitMinConversations int
	// DeskGrace turns on presence from desk connections: an agent gets work only while a desk
	// page of theirs is connected (DeskConnected), starts Offline until one connects, and goes
	// Offline when the last one has been gone for DeskGrace (a reload or a bridge restart fits
	// in it), which gives their pending offers to others. Zero: presence alone decides, as when
	// the engine serves agents who are not on the sandbox desk.
	DeskGrace time.Duration
	// Pos is where the document starts.
	Pos Pos
	at  fieldPos
}

// Pos is a position in the configuration file: 1-based line and column, 0 when the value was not
// read from a file.
type Pos struct {
	Line, Column int
}

// Workstream is a container that routes conversations of one kind (msdyn_liveworkstream).
type Workstream struct {
	// Name identifies the workstream.
	Name string
	// Bot is the bot user that takes new conversations first (Omnichannel's "Add a bot to a
	// workstream"). Empty: conversations go straight to the route-to-queue rules.
	Bot string
	// Variables declares the context variables rules may use, with their types.
	Variables []Variable
	// Rules are the route-to-queue rules, evaluated in order; the first one that matches (and
	// whose queue is not overflowing) wins.
	Rules []Rule
	// FallbackQueue takes conversations no rule matches. Required.
	FallbackQueue string
	// Capacity is what one conversation consumes: either Units of an agent's unit-based capacity
	// or one item of a capacity profile. Exactly one must be set.
	Capacity Capacity
	// AllowedPresences are the base presences in which agents get conversations pushed.
	// Default: Available and Busy. Offline is never allowed.
	AllowedPresences []Presence
	// AutoAccept opens offered conversations directly instead of waiting for the agent to accept
	// (the "Directly open session" notification). Default: false.
	AutoAccept bool
	// OfferTimeout is how long an agent has to accept before the offer is withdrawn and the
	// conversation goes to the next agent. Default: 120s, Omnichannel's screen-pop timeout.
	OfferTimeout time.Duration
	// ReofferAfterDecline is how long an agent who declined (or let an offer time out) is not
	// offered the same conversation again ("Assign work item after decline or timeout").
	// Default: 2m.
	ReofferAfterDecline time.Duration
	// ShowQueuePosition sends waiting customers their position in the queue.
	ShowQueuePosition bool
	// ShowAverageWaitTime sends waiting customers the queue's average wait time.
	ShowAverageWaitTime bool
	Pos                 Pos
	at                  fieldPos
}

// Variable declares a context variable. Names are case-sensitive, at most 100 characters.
type Variable struct {
	Name string
	Type Type
	Pos  Pos
}

// Rule is one route-to-queue rule: if When matches, the conversation goes to Queue.
type Rule struct {
	Name  string // default "rule N"
	When  Condition
	Queue string
	Pos   Pos
	at    fieldPos
}

// Capacity is the capacity a workstream's conversation consumes.
type Capacity struct {
	Units   int    // unit-based: units taken from the agent's Capacity
	Profile string // profile-based: one work item of this capacity profile
	Pos     Pos
}

// AssignmentMethod is how a queue picks an agent.
type AssignmentMethod string

// The assignment methods of Omnichannel messaging queues.
const (
	// HighestCapacity picks the eligible member with the most available capacity; ties go to
	// the one whose last assignment in the queue is the oldest (round robin).
	HighestCapacity AssignmentMethod = "highest_capacity"
	// AdvancedRoundRobin picks the eligible member whose last assignment in the queue is the
	// oldest; the initial order is the order of the queue's members.
	AdvancedRoundRobin AssignmentMethod = "advanced_round_robin"
)

// Queue holds conversations until a member takes them (msdyn_omnichannelqueue).
type Queue struct {
	Name string
	// Assignment is the assignment method. Default: highest_capacity.
	Assignment AssignmentMethod
	// Priority orders work across queues: an agent in several queues gets work from the queue
	// with the lowest number first; equal priorities serve the oldest conversation first.
	// Default: 1.
	Priority int
	// Agents and Bots are the members, in the order they were added to the queue.
	Agents []string
	Bots   []string
	// Overflow handles surges.
	Overflow Overflow
	Pos      Pos
	at       fieldPos
}

// Overflow holds a queue's overflow condition-action pairs for messaging.
type Overflow struct {
	// WorkItemLimit is checked once before a conversation enters the queue: it overflows when
	// Limit conversations (1–100) already wait in it.
	WorkItemLimit *OverflowRule
	// WaitingTime is checked while a conversation waits: it overflows when it has waited longer
	// than Exceeds (1 minute to 2 days).
	WaitingTime *OverflowRule
}

// OverflowAction is what happens to an overflowing conversation.
type OverflowAction string

// The overflow actions for messaging queues.
const (
	OverflowEnd          OverflowAction = "end_conversation"
	OverflowTransfer     OverflowAction = "transfer_to_queue"
	OverflowAssignAnyway OverflowAction = "assign_anyway" // work-item limit only
)

// OverflowRule is one overflow condition with its action.
type OverflowRule struct {
	Limit   int           // WorkItemLimit's condition
	Exceeds time.Duration // WaitingTime's condition
	Action  OverflowAction
	Queue   string // the target of OverflowTransfer
	Message string // the customer's message for OverflowEnd; default: the overflow_end message
	Pos     Pos
	at      fieldPos
}

// CapacityProfile is a work-item limit that agents share (msdyn_capacityprofile). Reset is
// immediate and assignment is blocked when the limit is reached.
type CapacityProfile struct {
	Name     string
	MaxUnits int // the default work-item limit, at least 1
	Pos      Pos
	at       fieldPos
}

// Agent is a human representative.
type Agent struct {
	ID   string
	Name string // shown to customers as {AgentName}; default: ID
	// Capacity is the agent's unit-based capacity. Zero: the agent takes no unit-based work.
	Capacity int
	// Profiles are the capacity profiles the agent has, each with an optional custom limit.
	Profiles []AgentProfile
	// Presence is the presence the agent starts with. Default: Available, as in Omnichannel
	// when no default presence is set.
	Presence Presence
	Pos      Pos
	at       fieldPos
}

// AgentProfile gives an agent a capacity profile; MaxUnits > 0 is a custom limit for this agent.
type AgentProfile struct {
	Profile  string
	MaxUnits int
	Pos      Pos
}

// Bot is a bot application user. Its capacity is unlimited and never reduced.
type Bot struct {
	ID   string
	Name string
	Pos  Pos
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the sandbox's default configuration file, to show or to copy.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// DefaultConfig returns the sandbox configuration: a workstream "chat" whose first user is the
// sandbox bot, a "Nurse" queue for BotHandoffTopic "Nurse", a "General" fallback queue and three
// agents. It panics if the embedded file is invalid, which a test rules out.
func DefaultConfig() *Config {
	cfg, err := ParseConfig("default.yaml", defaultYAML)
	if err != nil {
		panic(fmt.Sprintf("routing: embedded default configuration: %v", err))
	}
	return cfg
}

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("routing: read config: %w", err)
	}
	return ParseConfig(path, data)
}

// fieldPos records where each field of an element was written ("fallback_queue", "agents.2"),
// so that a problem with a value points at its own line.
type fieldPos map[string]Pos

// get returns the position of key, or fallback when it is unknown.
func (f fieldPos) get(key string, fallback Pos) Pos {
	if p, ok := f[key]; ok {
		return p
	}
	return fallback
}

// positions records the position of each field node.
func positions(f map[string]*yaml.Node) fieldPos {
	out := make(fieldPos, len(f))
	for k, n := range f {
		out[k] = pos(n)
	}
	return out
}

// ConfigError is a configuration that cannot be used: every problem found, each with its place.
type ConfigError struct {
	Problems []Problem
}

// Problem is one configuration problem.
type Problem struct {
	File   string
	Line   int // 0 when unknown
	Column int
	Msg    string
}

// String formats the problem as file:line:column: message.
func (p Problem) String() string {
	switch {
	case p.Line > 0 && p.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Msg)
	case p.Line > 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Error lists the problems, one a line.
func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return "routing config: " + strings.Join(lines, "\n")
}

// problems collects configuration problems for one file.
type problems struct {
	file string
	list []Problem
}

func (p *problems) add(at Pos, format string, args ...any) {
	p.list = append(p.list, Problem{File: p.file, Line: at.Line, Column: at.Column, Msg: fmt.Sprintf(format, args...)})
}

// err returns the problems in file order, or nil.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return &ConfigError{Problems: p.list}
}
