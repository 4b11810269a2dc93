// Package dynamics is Dynamics 365 Customer Service / Contact Center as the bridge's escalation
// target in the widget-first topology (T2, DESIGN.md §1), through the generally available
// Messaging API of a custom messaging channel "MessagingAPI" (shared/reference/contact-centers-t2.md
// §1, §5, §7). The customer chats with the bot in the bridge's own Direct Line widget; when the bot
// escalates, the conversation lands as a live chat in the workstream the channel is attached to,
// routed by its rules; the rep's replies come back by webhook to the customer's widget.
//
// # Out: the API
//
// Every call sends a client-credentials token (cached, renewed five minutes before it expires),
// channel-id and organization-id. Escalate makes one POST /api/v1.0/consumer/conversation/create:
//
//   - customercontext: the verified identity the site's server gave (bridge.Leg.Identity) —
//     preferredname, email, phonenumber, each cut to 200 characters — so that Dynamics links the
//     existing contact; nothing for an anonymous visitor. No customerid (see customerOf).
//   - conversationcontext: every routing variable of the escalation, typed (contextOf has the
//     rules), plus sessionId (the bridge's conversation id, the trace key back to the bridge),
//     channel "web" and summary (the bot's note), at most 100 entries.
//   - startmessage: rep-only; the note first, then the transcript, within 27 KB (StartMessage
//     has the rule), displayname Config.Displayname.
//   - skipdeflectionbot true: the bot has had its turn.
//   - conversationrequestid: derived from the bridge conversation and the escalation (requestID),
//     the same on every attempt.
//
// The returned conversationId is stored with the conversation (ChannelState value
// ValueConversation, the audit record) and logged. The channel's leg keeps the bridge's
// conversation id, so what the customer says while the create is under way waits in the outbox
// for the same leg. Send then posts to POST …/conversation/{id}: messages (SplitText cuts a text
// over 6,000 characters; attachments with an http(s) URL go with the last part, cards are left
// out), typing, and the customer's endOfConversation.
//
// # Retry policy
//
//   - 429 and 503: sent again after Retry-After (seconds or a date; the backoff without one). One
//     over Config.MaxRetryAfter ends the call at once as retryable with its Retry-After, and the
//     outbox waits that long before its next try.
//   - 401: the token is dropped and the call made once more with a new one.
//   - 500, 408, other 5xx, a connection that could not be opened: jittered exponential backoff
//     (Config.BackoffMin doubling to BackoffMax).
//   - 502, 504, an answer lost after the request went out: the API may have taken the call. The
//     create is sent again under the same conversationrequestid; a message is sent again under
//     the same id (a duplicate line is a blemish, a lost one breaks the conversation).
//   - 404 on the customer's endOfConversation: the chat is already closed; done. 404 (code 30013
//     or none) on anything else: the chat is closed on the Dynamics side, so the bridge ends its
//     side too (the customer sees the end). Other 4xx: not sent again (a dead letter on the
//     conversation, as the outbox records them).
//
// At most Config.MaxAttempts tries within Config.SendTimeout and the caller's deadline (for Send,
// the Hub's delivery timeout); a wait that would pass the deadline is not started. Send then
// returns a retryable *bridge.DeliveryError carrying the wait as RetryAfter, and the outbox tries
// again after it, from the log, across restarts; it never sets Timeout, which would make the
// outbox give up. What the customer says while the create is under way is retried the same way
// until the Dynamics conversation is stored. A failed create fails the escalation: the bot keeps
// the conversation and is told.
//
// # In: the webhook
//
// The channel's msdyn_webhookurl is {public_url}/dynamics/webhook; the API calls
// POST {that}/v3/conversations/{id}/activities. Each call's bearer token is checked before
// anything else — RS256 signature against the keys of Config.WebhookOpenIDMetadataURL, iss =
// WebhookIssuer, aud = WebhookAudience, exp required (5 minutes of leeway) — and refused with a
// 401 problem+json that changes nothing. Then:
//
//   - a rep's message (markdown text, the rep's name, attachments by URL) and typing reach the
//     customer's widget through Hub.Receive, the webhook activity's id as idempotency key, so
//     Microsoft's repeated delivery is recorded once;
//   - AgentAssigned / AgentAccepted → Hub.Accept (state agent) and "<name> has joined", once per rep;
//   - AgentEndSession, PrimaryAgentEndConversation, ConversationClose, the sampled
//     ConversationClosed and AgentClosed, SupervisorForceClosedConversation → Hub.End: the customer
//     sees the end and every leg closes; other events (transfers, consults, disconnects,
//     out-of-hours) are logged. Names are matched without regard to case, on name whatever the
//     type, or on the text "EventName: **_X_**" when name is missing.
//
// The answer is 200 once the activity is in the log (durable with the SQLite store), within 8 s
// (Microsoft waits 10); an unknown conversation gets 404, a store failure 500/503 so that
// Microsoft tries again.
//
// Logs carry conv_id, dynamics_conversation_id, status, code and x-ms-correlation-id, never a
// token, the secret, message text or the customer's identity.
//
// # Known limits (unverified against a live org)
//
//   - That conversationrequestid makes the create idempotent is an inference (the docs show it
//     in the sample and do not describe it). A create whose answer was lost and that the API did
//     not recognise as a repeat would open a second chat; the bridge would follow the second.
//   - A create that ran out of time after it was sent, or during which the bridge stopped, fails
//     the escalation (the bot keeps the conversation; after a restart the Hub's escalation timer
//     sees to it) although Dynamics may have opened the chat; that chat is left to the
//     workstream's timeout rules. What the customer said while a failed escalation was under way
//     is recorded as a dead letter on the conversation (the bot did not get it either).
//   - The problem body's member that carries the numeric code is not documented; code,
//     errorCode and errorcode are read.
//   - The webhook token's exact claims are not spelled out: aud is taken to be the Application ID
//     URI (or the client id), iss the tenant's v2.0 issuer.
//   - Whether the rep sees startmessage and the displayable context variables as this package
//     intends, and how the typing body names the rep, was not observed; typing is shown as the
//     rep who accepted.
//   - The parts of a split message already taken are recorded after each one (ValueParts); a
//     crash between a part's answer and that record sends the part once more.
//   - The link from a Dynamics conversation id to the bridge's is cached in memory (a day, within
//     16 MiB) and, on a miss (after a restart, on another instance), rebuilt from every
//     conversation's stored value: one read of them all per miss.
package dynamics
