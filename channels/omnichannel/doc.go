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
// Conversation's Context, and is relayed to the bot like any activity. Omnichannel's activity
// id is the Hub's idempotency key ("omnichannel:<id>"): a repeated POST is answered 200 and not
// relayed again, across restarts.
//
// # Reply ids
//
// A bot's reply names the customer's activity by its bridge id; Omnichannel wants its own
// (ReplyToActivity). Before an inbound activity is handed to the Hub — the bot may answer
// before Hub.Receive returns — the channel stores a reply link {the log's last sequence
// number, Omnichannel's id} in the conversation's value "omnichannel/replies", the last 32
// links as one small JSON list: one store write per inbound activity (none for a repeated
// one). Inbound activities of a conversation are handed over one at a time, so the first
// customer record after that sequence number is the activity; a reply resolves its replyToId
// by checking exactly that in the log (one bounded read, then cached). Memory holds only
// caches of the store.
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
// Context variables are stored with Hub.Update (a compare-and-swap on the conversation), so
// they cannot undo the Hub's own changes. A reply to an activity older than the conversation's last 32 inbound ones, or whose link
// could not be stored, goes to the conversation (SendToConversation) instead. The links are
// read, changed and written by the instance that takes the conversation's inbound activities,
// one at a time; two instances taking the same conversation's activities at once (a shared
// store, Omnichannel retrying on another instance) could each drop the other's newest link,
// or resolve a reply to the other's activity, which again only changes which message the
// reply is threaded under.
package omnichannel
