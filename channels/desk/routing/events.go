package routing

import "time"

// EventKind says what happened.
type EventKind string

// The event kinds. Every Engine method returns the events it caused, in order; the caller acts
// on them (notify the agent of an offer, send the customer a message, close a conversation the
// engine ended, update the supervisor view).
const (
	EventBotAssigned    EventKind = "bot_assigned"    // a bot took the conversation (Bot)
	EventEscalated      EventKind = "escalated"       // the bot handed it over (Bot)
	EventQueued         EventKind = "queued"          // it entered a queue and waits (Queue)
	EventOffered        EventKind = "offered"         // pushed to an agent: show the notification (Agent)
	EventAccepted       EventKind = "accepted"        // the agent accepted: connect them (Agent)
	EventDeclined       EventKind = "declined"        // the agent declined; it waits again
	EventOfferExpired   EventKind = "offer_expired"   // the agent did not answer in time: remove the notification
	EventOfferWithdrawn EventKind = "offer_withdrawn" // the agent's presence no longer allows it: remove the notification
	EventTransferred    EventKind = "transferred"     // moved from FromQueue to Queue (Reason)
	EventReleased       EventKind = "released"        // the agent no longer holds it (Reason)
	EventEnded          EventKind = "ended"           // routing ended it (overflow): close the conversation
	EventPresence       EventKind = "presence"        // an agent's presence changed (Agent, Presence)
	EventMessage        EventKind = "message"         // an automated message for the customer (Trigger, Text)
)

// Reason qualifies transfers, releases and ends.
type Reason string

// The reasons.
const (
	ReasonTransfer              Reason = "transfer"                 // an agent (or supervisor) transferred it
	ReasonOverflowWorkItemLimit Reason = "overflow_work_item_limit" // pre-queue overflow
	ReasonOverflowWaitingTime   Reason = "overflow_waiting_time"    // it waited too long
	ReasonAgentEnded            Reason = "agent_ended"              // Release
	ReasonEnded                 Reason = "ended"                    // End
)

// Event is one thing the engine did. Fields that do not apply to the kind are empty.
type Event struct {
	Kind           EventKind
	ConversationID string
	Queue          string
	FromQueue      string
	Agent          string
	Bot            string
	Presence       Presence
	Reason         Reason
	Trigger        Trigger // EventMessage
	Text           string  // EventMessage: the rendered text to send to the customer
	At             time.Time
}

// Messages returns the automated messages among events, in order.
func Messages(events []Event) []Event {
	var out []Event
	for _, ev := range events {
		if ev.Kind == EventMessage {
			out = append(out, ev)
		}
	}
	return out
}

// Offers returns the offers among events, in order.
func Offers(events []Event) []Event {
	var out []Event
	for _, ev := range events {
		if ev.Kind == EventOffered {
			out = append(out, ev)
		}
	}
	return out
}
