// echo-bot.js: a real botbuilder 4.23.3 bot (CloudAdapter) on node's own http server, for the Go
// interop tests of channels/botframework (and any bridge test that needs a self-hosted bot).
//
// Behaviour:
//   - message "handoff"  -> EventFactory.createHandoffInitiation (a handoff.initiate event) with
//                           the bot's own transcript of the conversation (a Transcript attachment)
//   - message "handoff note" -> the same, its routing variables and the agent's note side by
//                           side at the top level of the value (flat: {Skill, MessageToAgent})
//   - any other message  -> "echo: <text>"
//   - conversationUpdate with a user among membersAdded -> "welcome"
//   - invoke             -> invokeResponse 200 {"echo": <name>}; signin/* -> ActivityHandler's
//                           own answer, 501 (the bot handles no sign-in)
//
// Environment:
//   PORT             port on 127.0.0.1; 0 (default) picks a free one. Prints "listening <port>".
//   EXIT_ON_STDIN_END  set: exit when stdin closes (a test harness that dies takes the bot along).
//   MicrosoftAppId   empty: anonymous mode (no token checked, none sent), botframework.md §4.4.
//   otherwise the bridge is the identity provider both ways (botframework.md §8 B):
//     MicrosoftAppPassword, ToBotFromChannelOpenIdMetadataUrl, ToBotFromChannelTokenIssuer,
//     ToBotFromEmulatorOpenIdMetadataUrl, ToChannelFromBotLoginUrl, ToChannelFromBotOAuthScope,
//     OAuthUrl, CallerId. ConfigurationBotFrameworkAuthentication validates the bridge's tokens
//     with these alone; outbound tokens come from the bridge's dev token endpoint through
//     BridgeCredentialsFactory, because MSAL refuses an http authority (authority_uri_insecure).
'use strict';

const {
    ActivityHandler,
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    EventFactory,
} = require('botbuilder');
const { BridgeCredentialsFactory } = require('./bridge-credentials');
const { serve } = require('./http-host');
const transcripts = new Map(); // conversation id -> the messages the bot saw and sent

class EchoBot extends ActivityHandler {
    constructor() {
        super();
        this.onMessage(async (context, next) => {
            const text = (context.activity.text || '').trim();
            // The bot's own record of the conversation, handed over with the escalation.
            const log = transcripts.get(context.activity.conversation.id) || [];
            transcripts.set(context.activity.conversation.id, log);
            log.push({ type: 'message', text, from: { id: context.activity.from.id, name: context.activity.from.name, role: 'user' },
                timestamp: context.activity.timestamp });
            if (text === 'handoff') {
                const handoff = EventFactory.createHandoffInitiation(context, { skill: 'human', reason: 'asked' }, { activities: log });
                await context.sendActivity(handoff);
            } else if (text === 'handoff note') {
                const handoff = EventFactory.createHandoffInitiation(context,
                    { Skill: 'cards', MessageToAgent: 'Card blocked abroad; identity checked' }, { activities: log });
                await context.sendActivity(handoff);
            } else {
                await context.sendActivity(`echo: ${text}`);
                log.push({ type: 'message', text: `echo: ${text}`, from: { id: context.activity.recipient.id, name: context.activity.recipient.name, role: 'bot' },
                    timestamp: new Date().toISOString() });
            }
            await next();
        });
        this.onMembersAdded(async (context, next) => {
            for (const member of context.activity.membersAdded || []) {
                if (member.id !== context.activity.recipient.id) {
                    await context.sendActivity('welcome');
                }
            }
            await next();
        });
    }

    async onInvokeActivity(context) {
        if ((context.activity.name || '').startsWith('signin/')) {
            // This bot signs no one in: ActivityHandler's own answer (501 NotImplemented).
            return super.onInvokeActivity(context);
        }
        return { status: 200, body: { echo: context.activity.name } };
    }
}

function main() {
    const env = { ...process.env };
    const appId = env.MicrosoftAppId || '';
    if (!appId) {
        // Anonymous: no custom endpoints, so that BotFrameworkAuthenticationFactory builds the
        // public-cloud authentication with authentication disabled.
        for (const k of Object.keys(env)) {
            if (/^(ToBotFrom|ToChannelFrom|OAuthUrl|CallerId)/.test(k)) delete env[k];
        }
    }
    const credentials = new BridgeCredentialsFactory(appId, env.MicrosoftAppPassword || '');
    const auth = new ConfigurationBotFrameworkAuthentication(env, credentials);
    const adapter = new CloudAdapter(auth);
    adapter.onTurnError = async (context, error) => {
        console.error(`turn error: ${error && error.message}`);
        throw error; // CloudAdapter.process answers 500 (or 401 for an AuthenticationError)
    };
    const bot = new EchoBot();
    serve(adapter, bot);
}

main();
