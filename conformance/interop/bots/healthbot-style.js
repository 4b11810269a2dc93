// healthbot-style.js: a real botbuilder 4.23.3 bot (CloudAdapter, anonymous mode) that speaks to
// Omnichannel the way Azure Health Bot's Omnichannel bridge does (recordings/healthbot, the
// scenario action `session.sendChannelData('Escalating...', {tags: JSON.stringify({type:
// "Escalate", context: {...}})})`), for the Go T1 tests of channels/omnichannel.
//
// Behaviour:
//   - message "nurse" -> 'Escalating...' with channelData.tags = the JSON string
//                        {"type":"Escalate","context":{"EscalateToAgent":1,"BotHandoffTopic":"Nurse"}}
//   - message "bye"   -> "Goodbye", then endOfConversation (code completedSuccessfully)
//   - any other message -> "You said: <text>"
//   - every event it gets is printed as one JSON line {"event": name, "channelId", "value"}, so a
//     test can see what reached the bot (Omnichannel's context event).
//
// Environment:
//   PORT               port on 127.0.0.1; 0 (default) picks a free one. Prints "listening <port>".
//   EXIT_ON_STDIN_END  set: exit when stdin closes (a test harness that dies takes the bot along).
// Anonymous mode only (botframework.md §4.4): no token is checked or sent.
'use strict';

const { ActivityHandler, ActivityTypes, CloudAdapter, ConfigurationBotFrameworkAuthentication } = require('botbuilder');

const { serve } = require('./http-host');

class HealthBotStyle extends ActivityHandler {
    constructor() {
        super();
        this.onMessage(async (context, next) => {
            const text = (context.activity.text || '').trim();
            if (text === 'nurse') {
                await context.sendActivity({
                    text: 'Escalating...',
                    channelData: {
                        tags: JSON.stringify({ type: 'Escalate', context: { EscalateToAgent: 1, BotHandoffTopic: 'Nurse' } }),
                    },
                });
            } else if (text === 'bye') {
                await context.sendActivity('Goodbye');
                await context.sendActivity({ type: ActivityTypes.EndOfConversation, code: 'completedSuccessfully' });
            } else {
                await context.sendActivity(`You said: ${text}`);
            }
            await next();
        });
        this.onEvent(async (context, next) => {
            const a = context.activity;
            console.log(JSON.stringify({ event: a.name, channelId: a.channelId, value: a.value === undefined ? null : a.value }));
            await next();
        });
    }
}

function main() {
    const env = {};
    for (const [k, v] of Object.entries(process.env)) {
        // Anonymous: no app id and no custom endpoints, so that botbuilder disables authentication.
        if (!/^(Microsoft|ToBotFrom|ToChannelFrom|OAuthUrl|CallerId)/.test(k)) env[k] = v;
    }
    const adapter = new CloudAdapter(new ConfigurationBotFrameworkAuthentication(env));
    adapter.onTurnError = async (context, error) => {
        console.error(`turn error: ${error && error.message}`);
        throw error;
    };
    const bot = new HealthBotStyle();
    serve(adapter, bot);
}

main();
