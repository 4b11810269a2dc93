package routing

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Trigger names an automated message: when the engine produces it and what it tells the
// customer. The engine returns the text in an EventMessage; the caller sends it.
type Trigger string

// The triggers. Most are Omnichannel's preconfigured automated message triggers; WaitingForAgent
// is bfbridge's own (Omnichannel's widget shows a similar line itself).
const (
	// WaitingForAgent: the conversation entered a queue ("an agent will be with you").
	TriggerWaitingForAgent Trigger = "waiting_for_agent"
	// AgentAssigned: "Agent assigned to a conversation" — an agent was offered the conversation.
	// Off by default, as Microsoft advises against it for messaging.
	TriggerAgentAssigned Trigger = "agent_assigned"
	// AgentUnavailable: "Agent couldn't be assigned to conversation" — the queue has no members.
	TriggerAgentUnavailable Trigger = "agent_unavailable"
	// AgentJoined: "Agent joined conversation" — the agent accepted.
	TriggerAgentJoined Trigger = "agent_joined"
	// TransferAccepted: "Transfer to agent accepted" — an agent accepted a transferred conversation.
	TriggerTransferAccepted Trigger = "transfer_accepted"
	// AgentEnded: "Agent ended conversation".
	TriggerAgentEnded Trigger = "agent_ended"
	// AgentDisconnected: "Agent disconnected from conversation" — the agent went Offline.
	TriggerAgentDisconnected Trigger = "agent_disconnected"
	// QueuePosition: "Customer's position in queue" — second or beyond.
	TriggerQueuePosition Trigger = "queue_position"
	// NextInLine: "Customer is next in line".
	TriggerNextInLine Trigger = "next_in_line"
	// AverageWaitTime: "Average wait time for customers".
	TriggerAverageWaitTime Trigger = "average_wait_time"
	// OverflowEnd: "End conversation due to overflow".
	TriggerOverflowEnd Trigger = "overflow_end"
)

// DefaultMessages returns the default text of every trigger. Texts may use the slugs
// {AgentName}, {QueueName}, {QueuePosition} (1 for the next in line), {PeopleAhead},
// {AverageWaitTime} and context variables as {$VariableName$} (case-exact; a missing variable
// becomes the empty string).
func DefaultMessages() map[Trigger]string {
	return map[Trigger]string{
		TriggerWaitingForAgent:   "Thanks for waiting. An agent will be with you shortly.",
		TriggerAgentAssigned:     "",
		TriggerAgentUnavailable:  "Sorry, no agents are available to help right now.",
		TriggerAgentJoined:       "{AgentName} has joined the conversation.",
		TriggerTransferAccepted:  "You're now chatting with {AgentName}.",
		TriggerAgentEnded:        "{AgentName} has ended the conversation.",
		TriggerAgentDisconnected: "{AgentName} has been disconnected. Please stay in the chat.",
		TriggerQueuePosition:     "People ahead of you: {PeopleAhead}.",
		TriggerNextInLine:        "You're next in line.",
		TriggerAverageWaitTime:   "Average wait time: {AverageWaitTime}.",
		TriggerOverflowEnd:       "All our agents are busy right now. Please try again later.",
	}
}

var knownSlugs = map[string]bool{
	"AgentName": true, "QueueName": true, "QueuePosition": true, "PeopleAhead": true, "AverageWaitTime": true,
}

// slugPattern finds {Name} and {$Name$} slugs; anything else in braces is literal text.
var slugPattern = regexp.MustCompile(`\{(\$[A-Za-z0-9_]+\$|[A-Za-z][A-Za-z0-9_]*)\}`)

// checkTemplate returns the first unknown slug in a message text, or "".
func checkTemplate(text string) string {
	for _, m := range slugPattern.FindAllStringSubmatch(text, -1) {
		if !strings.HasPrefix(m[1], "$") && !knownSlugs[m[1]] {
			return m[0]
		}
	}
	return ""
}

// slugs are the values a message is rendered with.
type slugs struct {
	agentName, queueName string
	position             int
	averageWait          time.Duration
	ctx                  map[string]Value
}

// render replaces the slugs in text.
func render(text string, s slugs) string {
	return slugPattern.ReplaceAllStringFunc(text, func(m string) string {
		name := m[1 : len(m)-1]
		if strings.HasPrefix(name, "$") {
			return s.ctx[strings.Trim(name, "$")].String()
		}
		switch name {
		case "AgentName":
			return s.agentName
		case "QueueName":
			return s.queueName
		case "QueuePosition":
			return fmt.Sprint(s.position)
		case "PeopleAhead":
			return fmt.Sprint(max(s.position-1, 0))
		case "AverageWaitTime":
			return formatWait(s.averageWait)
		}
		return m
	})
}

// formatWait writes a wait time in whole minutes, rounded up, with hours when it is an hour or
// more: "3 mins", "1 min", "1 hr 5 mins", "2 hrs".
func formatWait(d time.Duration) string {
	mins := int((d + time.Minute - 1) / time.Minute)
	plural := func(n int, unit string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s", unit)
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	if mins < 60 {
		return plural(mins, "min")
	}
	h, m := mins/60, mins%60
	if m == 0 {
		return plural(h, "hr")
	}
	return plural(h, "hr") + " " + plural(m, "min")
}
