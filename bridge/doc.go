// Package bridge is the core of bfbridge: conversations and their legs, the Hub that relays
// activities between legs by role, the outbox that delivers them, and the Store contract that
// holds all of it. It knows no wire protocol.
//
// Channels see the Hub through small interfaces (Receiver, Conversations, ContactCenter, Logs,
// ChannelState), each constructor taking the ones it needs; none of them reaches the Store.
//
// # The flow
//
// A channel hands the Hub what arrives on one of its legs (Hub.Receive, through the Receiver
// interface), with an idempotency key when its protocol has one (Direct Line's
// clientActivityID, Omnichannel's activity id, the upstream Direct Line id of a hosted bot's
// activity). Receive then:
//
//  1. validates: the leg's conversation exists and has not ended;
//  2. appends the activity to the conversation's log (Store.Append), addressed to the legs the
//     conversation's state and the sender's role call for (Record.To): the customer's activity
//     to the bot or the agent, the bot's or agent's to the customer, an endOfConversation to
//     every other leg. Commands for the bridge are never addressed to the customer; legs that
//     read the log themselves (Direct Line: LogReader) are never addressed. The append is
//     durable when it returns, and a repeated key returns the first record instead;
//  3. changes the conversation's state for the handoff signal the activity carries (an
//     escalation, an end) with a compare-and-swap update (UpdateConversation);
//  4. hands the record to the outbox, and waits (up to HubConfig.DeliveryTimeout) for the
//     outcome of its first delivery attempt to each addressed leg, so that a Direct Line POST
//     still answers with what the bot answered (200, 502, 504).
//
// An invoke is taken with Hub.Invoke: Receive, then a wait (Store.Watch) for the bot's
// invokeResponse record, which the channel that delivered the invoke appended — in this process
// or another on the same store — so that the caller answers with the bot's status (invoke.go).
//
// The outbox runs, per (conversation, leg) with work, one pump: it reads the log from the leg's
// cursor (Store.Cursor, Store.Since), sends each record addressed to the leg in the log's
// order (Channel.Send), and acknowledges it (Store.Ack). A retryable failure is retried with
// jittered backoff and Retry-After for up to HubConfig.RetryFor; a refusal, a timeout (the far
// side may have taken it) or a retry that ran out is recorded as a dead letter on the
// conversation (Conversation.Dead, and the logs) and acknowledged, and the pump moves on. So
// nothing acknowledged depends on a goroutine staying alive: after a crash, Hub.Run asks the
// store which legs have records past their cursor (Store.Pending) and resumes them, under the
// same activity ids. The bot's greeting (the conversationUpdates of a new conversation) is sent
// by the bot leg's pump before the first record it delivers, from the stored conversation
// (BotGreeted), with fixed ids; handoff statuses to the bot, inactivity reminders and ends are
// records of the log like any other.
//
// State changes (Start, escalation, Accept, Requeue, ReturnToBot, End, SetInactivity, and
// channels' own through Hub.Update) are compare-and-swap updates of the stored conversation,
// retried on a conflict: every transition is stored before it is acted on, and no lock is held
// while a channel or a contact center is called. Timers are due entries in the store
// (Store.SetTimer, Store.DueTimers) that Hub.Run acts on; the inactivity timer is set when a
// conversation starts and moved when it comes due, so a customer's activity writes nothing.
//
// # Several processes on one store
//
// A store that several bridge processes share (Redis) provides Leaser, and the Hub then runs
// each (conversation, leg) pump and each due timer in one process at a time:
//
//   - A pump takes the leg's lease (Leaser.Acquire, OutboxLease) before it reads the leg's cursor,
//     renews it every third of HubConfig.LeaseTTL while it runs, and releases it once caught up
//     (before it ends, so a process waiting for it takes it at once). It acknowledges with its
//     fencing token (Leaser.AckFenced): when its lease ran out while it stalled and another
//     process took the leg over, the store refuses the acknowledgement (ErrFenced) and the pump
//     stops; a lease it could not renew for as long as it lasts stops it too. A process that
//     appends a record for a leg whose lease another holds tries for the lease for up to the
//     delivery timeout when a caller waits for the record's first attempt (the holder delivers
//     it, or releases the lease when caught up); otherwise it leaves the leg to the holder.
//   - Hub.Run looks for pending legs every HubConfig.PendingScan (Store.Pending) and tries each
//     leg's lease once: a dead process's legs are taken over within LeaseTTL + PendingScan of
//     its last renewal (7s by default), and a record whose pump finished just before it was
//     appended is delivered within PendingScan.
//   - A due timer is acted on only by the process that claimed it (Leaser.ClaimTimer: the timer
//     still due at that time and its lease free, in one step); the lease is renewed while the
//     handler runs and released after it moved or removed the timer. A claimer that dies leaves
//     the timer due, claimed again once its lease runs out.
//
// SharedValues lets the wiring create once, for all instances, what they must agree on (the
// Direct Line secret, the key that signs the bot's tokens). Stores of one process (memory,
// SQLite) provide neither, and the Hub behaves as described above without leases.
//
// # Locks
//
// The Hub's own locks are leaves: Hub.mu guards the registered channels, outbox.mu the
// outbox's lines; neither is held while another lock is taken, nor while the store, a channel
// or a contact center is called. There is no per-conversation or per-leg lock in the process; with
// a Leaser store the lease on a leg or a timer is the cross-process one, taken with no lock held
// and never waited for while holding another lease.
//
// # What the Store guarantees
//
// See Store: appends durable when they return, numbered from 0 per conversation (the Direct
// Line watermark), idempotent by key; conversations created atomically and replaced only by a
// compare-and-swap on their version; cursors that never move back, and that after a crash may
// be behind what was delivered (a leg may get a record again under the same id, never miss
// one); pending legs, due timers, values and files kept with their conversation and removed
// with it; conversations listed in id order (Store.Conversations, paged); and an erase
// (Store.EraseConversation) after which nothing of a conversation can be read or is delivered:
// its log, legs (free for a new conversation), idempotency keys, cursors, pending deliveries,
// timers, values, files and leases are gone, and its watchers are woken. The admin API's
// filters (FindConversations) scan that list. storetest.Run checks it for every implementation.
//
// # Known limits
//
// A transition and the record it causes (the end's endOfConversation, a handoff.status) are two
// writes: a crash between them leaves the state changed without the record (an ended
// conversation whose legs are not told; a bot not told its handoff was accepted). A crash while a
// contact center was being called leaves the conversation in StateEscalating until its
// escalation timer (4 × the delivery timeout) gives it back to the bot, who is told the handoff
// failed: the contact center is not called again, since it may have taken it. The greeting at the start of a conversation is sent when the bot leg's pump
// first runs; a crash before that delays it to the customer's first activity.
//
// With several processes: deliveries stay at least once. A process that dies (or stalls past its
// lease) in the middle of a Send leaves that record to be delivered again by the next owner,
// under the same id; fencing stops the stale owner from moving the cursor or going on, not the
// one Send it had in flight. A dead process's legs wait up to LeaseTTL + PendingScan, and every
// process scans every PendingScan the conversations with a leg behind its cursor (the Redis
// store drops caught-up ones from its index), including those a live process is delivering:
// a leg retried for minutes (its far side down) is looked at by every process on every scan. A caller that appended a record for a leg another process is
// delivering is answered with that process's outcome only if it gets the lease within the
// delivery timeout; otherwise it is told the delivery is pending (the record is in the log and
// will be delivered). Timer handlers that run longer than their lease while cut off from the
// store can overlap with the next claimer; their writes are compare-and-swaps, and a reminder is
// then at worst sent twice.
package bridge
