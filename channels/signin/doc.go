// Package signin is the Bot Framework token service, served by the bridge for the bots behind
// it: the API a bot's UserTokenClient calls at its OAuthUrl (signin.md §1), the sign-in pages the
// customer's browser visits (the bridge's link, the identity provider's login, the redirect back
// to /.auth/web/redirect, §3 and §6.4), and both ways the sign-in completes: a 6-digit magic
// code the customer types (§2a, §6.6), or the channel's own tokens/response event when the
// browser proves, with the Direct Line session cookie, that it is the customer's (§2b, §6.5).
// Single sign-on tokens are checked and exchanged by POST /api/usertoken/exchange (§2c, §3).
//
// Nothing is kept in memory: sign-in sessions, magic codes and tokens are values of the
// conversation they belong to in the bridge's store (bridge.ChannelState), so that any instance
// of a bridge sharing its store serves any step, and erasing a conversation erases its tokens.
// Tokens are sealed with AES-256-GCM before they are stored (seal.go).
package signin
