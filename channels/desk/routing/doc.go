// Package routing is the sandbox contact center's unified routing engine: it decides which bot,
// queue and agent get a conversation, following the concepts of Dynamics 365 Omnichannel's
// unified routing. It is pure logic: no HTTP, no websockets, no storage. The desk and the bridge
// call an Engine and act on the Events it returns (show an offer to an agent, send the customer
// an automated message, close a conversation routing ended); they persist its State.
//
// # Concepts, as in Omnichannel
//
//	Omnichannel                               here
//	workstream (msdyn_liveworkstream)         Workstream: context variables, bot, rules, fallback queue, capacity, allowed presences
//	context variable (Text, Number)           Variable with Type string, integer, number or boolean; names case-exact, ≤100 chars
//	route-to-queue ruleset, decision list     Workstream.Rules: ordered; first match wins; no match → FallbackQueue
//	rule condition builder                    Condition: var/op/value, nested all (AND) / any (OR)
//	queue (msdyn_omnichannelqueue), priority  Queue: members (agents, bots), Priority (1 served first), assignment method
//	Highest capacity                          HighestCapacity: most available capacity; ties → earliest last assignment
//	Advanced round robin                      AdvancedRoundRobin: earliest last assignment in the queue; first, member order
//	capacity profile, custom limit            CapacityProfile.MaxUnits; AgentProfile.MaxUnits overrides it per agent
//	unit-based capacity                       Workstream.Capacity.Units against Agent.Capacity
//	base presence (msdyn_basepresencestatus)  Presence: Available, Busy, Busy-DND, Away, Offline (Code gives 192360000…004)
//	allowed presences (default here)          Available and Busy
//	push notification, accept/reject          EventOffered; Accept, Decline; OfferTimeout (120 s); ReofferAfterDecline (2 min)
//	"Directly open session"                   Workstream.AutoAccept
//	bot added to a workstream                 Workstream.Bot: takes new conversations first
//	bot application user in a queue           Queue.Bots: unlimited capacity, never reduced, so picked first
//	Escalate (bot tags)                       Escalate: update context variables, rerun the route-to-queue rules
//	transfer to queue                         TransferToQueue
//	overflow before queueing                  Overflow.WorkItemLimit: end conversation, transfer to queue, assign anyway
//	overflow while queued                     Overflow.WaitingTime (1 min – 2 days): end conversation, transfer to queue
//	automated messages, slugs                 Messages by Trigger; {AgentName}, {QueueName}, {$ContextVariable$}, …
//	customer wait time (position, average)    ShowQueuePosition, ShowAverageWaitTime
//	assignment cycle                          run after every operation and by Tick
//
// # Routing a conversation
//
// Route takes a new conversation. When its workstream has a bot that is not excluded, the bot
// takes it (bots do not accept offers; their capacity is never used up). Otherwise, and when the
// bot escalates (Escalate, which first merges the new context variables), the workstream's
// route-to-queue rules run in order and the first rule that matches chooses the queue; with no
// match the conversation goes to the fallback queue.
//
// Context values are typed. A value sent for a declared variable is converted to the variable's
// type when nothing is lost (101 → 101.0 for a number, "7" → 7 for an integer, "true" → true);
// otherwise it keeps its own type and every condition on it is false except exists (a type
// mismatch). Conditions on text ignore case, as Dataverse conditions do. A missing variable fails
// every operator except not_exists, including not_equals and not_in.
//
// A queue's pre-queue overflow (a work-item limit) is checked once, before the conversation
// enters the queue: a matched queue that overflows gives way to the queue of the next matching
// rule; when all matched queues overflow, the first one's action runs. The fallback queue's
// overflow is ignored, transfers are never checked, and when a bot escalates only the first
// escalation is checked, all as in Omnichannel.
//
// # Assignment
//
// After each operation an assignment cycle runs: waiting conversations, from the queue with the
// highest priority first and then first in first out (a transferred conversation keeps its
// original place in line), each go to the member their queue's method picks among those who can
// take them. An agent can take a conversation when the agent's presence is one of the
// workstream's allowed presences, the agent has capacity for it (free units, or a free item of
// the workstream's capacity profile), did not transfer it to this queue, and did not decline it
// (or let an offer expire) within ReofferAfterDecline. The agent is offered the conversation,
// which holds the capacity; Accept connects, Decline or an expired offer (Tick) passes it on.
// Release (the agent ends it) and End (it ended elsewhere) free the capacity.
//
// An escalated conversation never goes back through routing to a bot it escalated from, so a
// queue staffed only by that bot leaves it waiting (Omnichannel advises staffing bot queues with
// people for that reason). TransferToBot is bfbridge's direct "return to bot": an agent may hand
// the conversation back to the bot that escalated it; the bot is excluded again if it escalates
// again.
//
// # Presence
//
// Only agents in an allowed presence get work; by default Available and Busy, so Busy-DND, Away
// and Offline agents get none. With desk_grace, presence also follows the desk pages: agents
// start Offline, get their configured presence when a desk page connects, get no new offers
// while none is connected, and go Offline (their offers passed on) when none has come back
// within the grace (desk.go). As in Omnichannel, the engine recomputes the presence of an
// agent who is Available or Busy whenever the agent's load changes: Available with no work, Busy
// with some, Busy-DND when every capacity the agent has is used up (and back when it frees up).
// Away, Offline and a Busy-DND the agent chose stay until the agent changes them. Going Offline
// withdraws pending offers and tells the customers of the agent's conversations that the agent
// disconnected; those conversations stay assigned.
//
// # Events and messages
//
// Every method returns the Events it caused, in order. EventMessage carries an automated message
// for the customer, rendered from Config.Messages or DefaultMessages: waiting for an agent,
// agent assigned (off by default), agent couldn't be assigned (the queue has no members who can
// ever take it), agent joined, transfer accepted, agent ended, agent disconnected, queue
// position and next in line (every 30 s at most when the position changes, through Tick), the
// average wait time (an exponential moving average of connected conversations' waits, shown
// after 20 conversations and when over a minute, reset after 7 quiet days), and overflow end.
//
// # Concurrency and persistence
//
// An Engine is safe for concurrent use; one mutex serialises its methods, which never block or
// do I/O. Time comes only from the clock given to New; call Tick every few seconds to expire
// offers, run waiting-time overflow and position updates. Export returns a State (JSON) to store;
// Restore loads it into an engine built from the same or a changed configuration, and Tick then
// resumes assignment.
//
// # Configuration
//
// ParseConfig and LoadConfig read YAML and validate it; every problem is reported with the file,
// line and column (a *ConfigError). DefaultConfig is the sandbox's configuration (default.yaml):
//
//	workstreams:
//	  - name: chat
//	    bot: sandbox-bot                 # optional: first user for new conversations
//	    variables: {BotHandoffTopic: string, EscalateToAgent: integer}
//	    rules:                           # first match wins
//	      - name: Nurse line
//	        when: {var: BotHandoffTopic, op: equals, value: Nurse}
//	        queue: Nurse
//	      - name: Urgent
//	        when: {any: [{var: EscalateToAgent, op: greater_than, value: 1},
//	                     {all: [{var: BotHandoffTopic, op: in, value: [Billing, Refund]}]}]}
//	        queue: General
//	    fallback_queue: General
//	    capacity: {profile: Chat}        # or {units: 30}
//	    allowed_presences: [Available, Busy]
//	    offer_timeout: 120s
//	    reoffer_after_decline: 2m
//	    auto_accept: false
//	    show_queue_position: true
//	    show_average_wait_time: true
//	queues:
//	  - name: Nurse
//	    assignment: highest_capacity     # or advanced_round_robin
//	    priority: 1
//	    agents: [nina]
//	    bots: []
//	    overflow:
//	      work_item_limit: {limit: 10, action: transfer_to_queue, queue: General}
//	      waiting_time: {exceeds: 5m, action: end_conversation, message: "Sorry, {QueueName} is busy."}
//	  - {name: General, assignment: advanced_round_robin, priority: 2, agents: [alex, nina]}
//	capacity_profiles: [{name: Chat, max_units: 2}]
//	agents:
//	  - {id: nina, name: Nina, profiles: {Chat: 3}, presence: Available}
//	  - {id: alex, name: Alex, capacity: 100, profiles: [Chat]}
//	bots: [{id: sandbox-bot, name: Sandbox bot}]
//	messages: {agent_joined: "{AgentName} is here to help."}
//	average_wait_min_conversations: 20
//	desk_grace: 15s                  # work only for agents with a desk page open (see desk.go)
//
// Operators: equals, not_equals, contains, not_contains, begins_with, ends_with (text), in,
// not_in (a list), greater_than, greater_or_equal, less_than, less_or_equal (integer, number),
// exists, not_exists (no value); spaces may replace underscores ("greater than").
//
// # Not modelled
//
// Skills and skill matching, work classification rulesets, percentage allocation and
// rule-specific overflow, operating hours, pick mode, custom assignment methods, the voice
// channel, end-of-day capacity reset, the Inactive presence and missed-notification settings.
package routing
