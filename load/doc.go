// Package load is bfbridge's load generator: "bridge load". It opens Direct Line conversations
// over loopback, sends activities at an open-loop rate (or as fast as replies come back, in a
// closed loop), and reports throughput, the latency the server adds, errors, and activities that
// were lost or delivered twice.
//
// Each activity carries its intended send time (channelData.loadSentAt, and the text "ld <n>
// <unix ns>", which echo bots return): latency runs from that time, not from when the generator
// got round to sending, so queueing in the generator or the server is not hidden (coordinated
// omission). The echo bot answers "echo: <text>"; a reply is matched to its send by n, per
// conversation. Lost means acknowledged and never answered; duplicated means answered twice.
//
// Targets, each in its own process, started by the generator from its own executable:
//
//   - relay: a bare gorilla websocket echo (the hardware baseline: the same message in, echoed
//     back out, no protocol);
//   - dlrelay: the Direct Line-shaped baseline (DLRelay): the bridge's wire work for each send
//     (POST …/activities with a bearer check, the echo and an in-process bot's reply written as
//     ActivitySet frames with the bridge's ids and watermarks) and nothing else, for "what the
//     hardware allows for this protocol";
//   - bridge-memory and bridge-sqlite: "bridge serve" with the in-memory or the durable store
//     (append before acknowledge) and an in-process echo bot (the sandbox bot with a one-rule
//     script), or the HTTP echo bot;
//   - offline-directline: the npm emulator (node), which has no websocket stream, so it is
//     polled; with the HTTP echo bot.
//
// Compare mode runs them one after another with the same workload and reports ratios. Idle mode
// measures the memory and goroutines a held, idle conversation costs the bridge.
//
// Everything stays on loopback: targets outside 127.0.0.0/8 and ::1 are refused, and the
// generator spreads its sockets over source addresses 127.0.0.2 upwards to pass the limit of
// ephemeral ports. Every run is bounded in time.
package load
