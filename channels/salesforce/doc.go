// Package salesforce is Salesforce Messaging for In-App and Web (MIAW) as a contact center of
// the widget-first topology (T2, DESIGN.md §1): when the bot hands off, the conversation opens
// as a messaging session in the Salesforce console, routed by Omni-Channel through routing
// attributes, and the bridge relays customer ↔ rep until either ends. The protocol is the one
// escalation.md §5 and contact-centers-t2.md §6 describe; the fake in fake_test.go follows it.
//
// # Customers and tokens
//
// Each bridge conversation is one MIAW conversation of one messaging end user. A customer the
// site's server vouched for (bridge.Leg.Identity) gets an authenticated access token, asked
// for with a customerIdentityToken the bridge signs (RS256, kid = identity_key_id, iss =
// identity_issuer, sub = the verified email in lower case, else the phone; a short exp); without
// an identity key, for an identity with a name only, or for an anonymous visitor, an
// unauthenticated token. The Direct Line user id is never the sub: unless the site bound it into
// the token, its holder may choose it. The token is stored with the conversation
// (session.go). A 401 renews it: a new authenticated token for a verified
// customer (the same sub, so the same end user), a continuation token for an anonymous one.
// Token requests share a per-org budget (requests_per_minute, default the documented 200 a
// minute): past it they wait, within the caller's deadline.
//
// # Escalation
//
// Escalate chooses the conversation's lowercase UUID and stores it before POST /conversation,
// so a retry, or a restart, opens the same conversation (a repeated create answered 409 counts
// as done). Routing attributes: the static ones of the configuration, under every context
// variable of the conversation and of the bot's escalation (strings, numbers, booleans; lists
// of plain values joined with ", "; objects left out), under Session_Id (the bridge's
// conversation id), Chat_Consumer_Type (Authenticated or Anonymous, configurable) and Summary
// (the bot's note for the agent, else its reason; 255 characters at most). MIAW has no
// transcript primitive; the bridge sends the transcript as the conversation's first messages
// (escalation.md §5 lists this option): a heading with the session id and the summary, then
// "Customer: …" / "Bot: …" lines in order; past transcript_max_chars the oldest lines are left
// out and a line says how many; lines are packed into messages of at most 4000 characters.
// The rep therefore sees them as messages of the customer, before anything the customer says
// next. The conversation is then queued (bridge.StateQueued) and its event stream watched. An
// escalation is bounded by escalate_timeout (45s); one that fails closes what it opened (DELETE,
// in case the conversation was made) and the bot keeps the conversation.
//
// # Relay
//
// Customer → rep (Send, through the Hub's outbox): text as StaticContentMessage, each file
// the bridge hosts (a Direct Line upload under the public URL) through POST /file (multipart
// messageEntry + fileData); a link elsewhere is sent as text, never fetched. A 413 or 415, or
// a file over max_file_bytes, is told to the customer as a message and the conversation goes
// on. Typing becomes a TypingStartedIndicator entry; the customer's end DELETE /conversation.
//
// Rep → customer: one SSE stream (GET /eventrouter/v1/sse) per escalated conversation, that
// is per customer token, started by Escalate and, after a restart, by Run for every open
// session in the store. It sends Last-Event-Id: the lastEventId of the token answer, then the
// id of each event once acted on, stored with the conversation (eventKey). It reconnects with
// backoff (1s ×1.5, at most 30s, as the Salesforce sample client), renews the token on 401,
// and reconnects a stream silent for heartbeat_timeout (90s). Events of other conversations
// and unknown event types are ignored; entryPayload is decoded from its JSON string.
// CONVERSATION_MESSAGE from Agent, Chatbot or System (never the customer's own echo, the
// Router or a Supervisor) reaches the customer with the text and attachments as links; the
// entry's identifier is the Hub's idempotency key, so an event replayed after a reconnect or a
// crash is recorded once. The rep's typing reaches the customer as typing. CONVERSATION_PARTICIPANT_CHANGED adding an Agent is the acceptance (Hub.Accept, and
// "<name> has joined"); a routing result alone is not. A CONVERSATION_ROUTING_RESULT with a
// failure tells the customer, gives the conversation back to the bot (Hub.ReturnToBot) and
// closes the MIAW conversation. CONVERSATION_SESSION_STATUS_CHANGED that ends the session
// (sessionStatus Ended/Closed/Inactive, or, without one, GET /conversation answering
// routingStatus NEEDS_ROUTING) and CONVERSATION_CLOSE_CONVERSATION end the conversation on
// every leg (Hub.End in the agent's name). The retry policy of the REST calls is in post.go.
//
// # Known limits
//
// Not verified against a live org: the payload shapes of the events (the reference has
// field names, no complete recorded payload; recordings/salesforce has none), the
// sessionStatus field of CONVERSATION_SESSION_STATUS_CHANGED, whether MIAW drops a repeated
// conversationId or message id (the retry policy assumes it does, or answers 409), the error
// body, the file limits (5 MB is the sample's), the text limit of a message, and whether
// attachment links of rep files open without a Salesforce session (they are passed on as
// they are, not re-hosted), and the lifetime of an unauthenticated token. A continuation token
// does not extend its token's expiry (contact-centers-t2.md §6), and a new anonymous token is
// a new end user: an anonymous customer whose token and continuation are refused cannot reach
// the conversation again, nor a verified one whose identity token is refused; the
// conversation is then ended, the customer told. The token budget is per bridge process, not shared across instances of a
// scale-out deployment; so is the cache of sessions (one instance runs a conversation's stream
// and deliveries). Each escalated conversation holds one open stream while it lasts. A
// customer's message written while the conversation is being opened waits for it, within the
// outbox's delivery timeout (then the outbox sends again). A customer's upload is read back
// through the bridge's public URL (the bridge must reach itself there). Rep messages other than text and
// attachments (choices, rich links) are not relayed; a rep leaving is announced but does not
// requeue the conversation (Omni-Channel's transfer is not visible in the documented events).
package salesforce
