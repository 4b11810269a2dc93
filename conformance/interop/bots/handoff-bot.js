// handoff-bot.js: a real botbuilder 4.23.3 bot (CloudAdapter, anonymous mode) that escalates in
// each of the dialects the bridge reads, for the Go T2 tests of contact centers
// (channels/dynamics):
//
//   - message "agent"   -> Bot Framework handoff.initiate built by EventFactory.createHandoffInitiation,
//                          value {MessageToAgent, Context:{Skill, Priority, VIP}} (BotBuilder-Samples'
//                          handoff library shape, escalation.md §6)
//   - message "nurse"   -> Health Bot's Omnichannel bridge: 'Escalating...' with channelData.tags =
//                          {"type":"Escalate","context":{"EscalateToAgent":1,"BotHandoffTopic":"Nurse"}}
//   - message "copilot" -> Copilot Studio's handoff.initiate: value with va_* variables and a topic
//                          variable (escalation.md §2, PVAS activities.json)
//   - any other message -> "echo: <text>"
//   - every event it gets is printed as one JSON line {"event": name, "value"} (handoff.status).
//
// Environment: PORT (0 picks one; prints "listening <port>"), EXIT_ON_STDIN_END.
'use strict';

const { ActivityHandler, CloudAdapter, ConfigurationBotFrameworkAuthentication, EventFactory } = require('botbuilder');

const { serve } = require('./http-host');

class HandoffBot extends ActivityHandler {
    constructor() {
        super();
        this.onMessage(async (context, next) => {
            const text = (context.activity.text || '').trim();
            if (text === 'agent') {
                const handoff = EventFactory.createHandoffInitiation(context, {
                    MessageToAgent: 'Customer wants a refund for order A-42',
                    Context: { Skill: 'billing', Priority: 2, VIP: true },
                });
                await context.sendActivity(handoff);
            } else if (text === 'nurse') {
                await context.sendActivity({
                    text: 'Escalating...',
                    channelData: { tags: JSON.stringify({ type: 'Escalate', context: { EscalateToAgent: 1, BotHandoffTopic: 'Nurse' } }) },
                });
            } else if (text === 'copilot') {
                await context.sendActivity({
                    type: 'event',
                    name: 'handoff.initiate',
                    value: {
                        va_Scope: 'bot', va_LastTopic: 'Refunds', va_Topics: ['Refunds'], va_LastPhrase: 'talk to a person',
                        va_Phrases: ['talk to a person'], va_ConversationId: context.activity.conversation.id,
                        va_AgentMessage: 'Wants a human about refunds', va_BotId: 'copilot-bot', va_BotName: 'Copilot',
                        va_Language: 'en-us', OrderNumber: 'A-42',
                    },
                });
            } else {
                await context.sendActivity(`echo: ${text}`);
            }
            await next();
        });
        this.onEvent(async (context, next) => {
            const a = context.activity;
            console.log(JSON.stringify({ event: a.name, value: a.value === undefined ? null : a.value }));
            await next();
        });
    }
}

function main() {
    const env = {};
    for (const [k, v] of Object.entries(process.env)) {
        if (!/^(Microsoft|ToBotFrom|ToChannelFrom|OAuthUrl|CallerId)/.test(k)) env[k] = v;
    }
    const adapter = new CloudAdapter(new ConfigurationBotFrameworkAuthentication(env));
    adapter.onTurnError = async (context, error) => {
        console.error(`turn error: ${error && error.message}`);
        throw error;
    };
    serve(adapter, new HandoffBot());
}

main();
