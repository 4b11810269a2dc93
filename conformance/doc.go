// Package conformance holds the bridge's interoperability tests with real third-party Bot
// Framework software (the node harness in interop/: botframework-directlinejs, Web Chat in
// headless Chromium, botbuilder bots, and offline-directline as a peer server) and the
// conformance suite: recorded scenarios (scenarios/, format in scenarios/README.md) replayed by
// runner/ against the bridge in process (TestScenariosAgainstBridge), against deliberately
// broken bridges to prove the suite catches each fault (TestSuiteCatchesBrokenBridge), and
// against offline-directline for the comparison table of README.md
// (TestCompareWithOfflineDirectLine; -update rewrites the table). The same runner checks any
// live Direct Line server: bridge conformance --target URL.
package conformance
