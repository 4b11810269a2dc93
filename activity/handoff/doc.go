// Package handoff is the canonical model of escalation to a human agent, and the dialects bots
// and contact centres speak it in. It reads an activity into the model (Detect, DetectFrom) and
// writes the model as any dialect's activity (Emit and the Emit* functions). Its functions are
// pure: no I/O, no clocks, no fetching of transcript URLs.
//
// The model:
//
//   - Escalation: routing context variables (Variables, each a typed Value: string, integer,
//     number, boolean, or JSON kept as it came), an agent note, the customer, the reason (last
//     topic and phrases), the transcript, and links to contact-centre records.
//   - End: reason and endOfConversation code.
//   - Status: pending, accepted, failed or completed, with a message.
//   - InboundContext: the routing context Omnichannel hands a bot at the start.
//
// The dialects: Omnichannel channelData.tags (three wire shapes: a JSON-string command, an
// array of labels, a comma-separated string of labels) with deliveryMode "bridged"; Copilot
// Studio's handoff.initiate with va_* variables, topic variables and a Transcript attachment,
// and its CloseOmnichannelConversation variable; the Bot Framework handoff.initiate and
// handoff.status events; Health Bot's sendChannelData escalation; endOfConversation; and the
// Omnichannel custom channel's conversationcontext and customercontext.
//
// Context values are coerced to what Omnichannel takes (String and Integer) by
// CoerceOmnichannel. Names stay case-exact, and every change is reported as a Note.
//
// Nothing is changed silently. Whatever a parser ignores or repairs, and whatever an emitter
// converts, shortens or drops, is reported as a Note beside the result. The mapping table,
// with its sources and the assumptions the references leave open, is MAPPING.md in this
// directory. The golden files in testdata prove that table.
package handoff
