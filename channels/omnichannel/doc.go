// Package omnichannel is the bridge as a Dynamics 365 Omnichannel bot application user
// (topology T1, DESIGN.md §1): Omnichannel routes a chat to a queue whose first member is a
// bot app user, whose Azure Bot messaging endpoint is the bridge's POST /api/messages. The
// bridge relays the customer's activities to the real bot through the Hub's bot channel
// (dlclient for Health Bot or Copilot Studio, botframework for a self-hosted bot) and the bot's
// replies back to Omnichannel's serviceUrl, and it turns the bot's escalation, in any dialect
// the Hub detects, into Omnichannel's agent-only Escalate command.
//
// # Inbound
//
// Each POST carries a Bot Framework channel token (botframework.md §4.1), checked with keyfunc
// and jwt/v5 against the keys the OpenID metadata's jwks_uri publishes: RS256, iss
// (https://api.botframework.com), aud = the app id, exp and nbf with 5 minutes of leeway, the
// serviceurl claim equal to the activity's serviceUrl, and — from the raw JWKS, which keyfunc
// does not keep — the key's endorsements containing the activity's channelId when the list is
// not empty. A refused token gets 401 in the Connector's error shape and nothing reaches the
// Hub. Each Omnichannel conversation is a bridge conversation (ConversationID) whose customer
// leg is {omnichannel, conversation.id, serviceUrl, from, recipient}; it starts on first sight.
// Omnichannel's context event (startConversation, omnichannelSetContext, or voice's
// conversationUpdate: handoff.Detect's SignalContext) has its variables stored on the
// Conversation's Context, and is relayed to the bot like any activity. A repeated POST of an
// activity id seen recently is answered 200 and not relayed again (in memory only).
//
// # Outbound
//
// Replies go to {serviceUrl}v3/conversations/{id}/activities[/{replyToId}] with a
// client-credentials token (token.go), every customer-visible message with
// channelData.deliveryMode "bridged". Escalate (a bridge.Escalator) sends one agent-only
// Escalate command and hands the conversation off (bridge.StateHandedOff). An
// endOfConversation — the bot's, Copilot's CloseOmnichannelConversation, or the Hub's end on
// inactivity — becomes the EndConversation command. The size rule is in size.go, the retry
// policy in post.go.
//
// # Known limits
//
// The channel stores context variables with a read-check-write on the Conversation (the Hub
// has no call to update context under its state lock); a context event arriving in the
// instant the bot escalates could race with the Hub's state change. Omnichannel sends its
// context event first, before the bot can escalate, which keeps this theoretical in practice.
// The ids used for repeated POSTs and for ReplyToActivity are remembered in memory: after a
// restart a reply goes to the conversation (SendToConversation) instead.
package omnichannel
