package handoff

import "github.com/bfbridge/bfbridge/activity"

// Azure Health Bot bridges to Omnichannel with a scenario action (recordings/healthbot/README.md,
// from the Microsoft Cloud for Healthcare lab):
//
//	session.sendChannelData('Escalating...', {
//	  "tags": JSON.stringify({type: "Escalate", context: {"EscalateToAgent": 1}})
//	});
//
// That is a message whose text is 'Escalating...' and whose channelData.tags is the JSON string
// {"type":"Escalate","context":{"EscalateToAgent":1}}: the Omnichannel command, byte for byte
// the shape OmnichannelBotClient writes. Nothing on the wire tells it from an Azure bot's
// command, so Detect reports DialectOmnichannel and DetectFrom(DialectHealthBot, a) labels it
// DialectHealthBot; the canonical model is the same. No Health Bot form of an end is
// documented; the Omnichannel EndConversation command is used for it too.

// EmitHealthBot writes an escalation as Health Bot's sendChannelData does: exactly
// EmitOmnichannel's message (text = agent note or summary, tags = the JSON-string command
// with coerced context, not bridged).
func EmitHealthBot(e *Escalation, opt CoerceOptions) (*activity.Activity, []Note, error) {
	return emitCommand(e, opt)
}
