// Package conformance holds the bridge's interoperability tests with real third-party Bot
// Framework software (the node harness in interop/: botframework-directlinejs, Web Chat in
// headless Chromium, botbuilder bots) and, as it grows, the replay of recorded scenarios.
package conformance
