// sso-bot.js: a real botbuilder 4.23.3 bot that signs its user in with botbuilder-dialogs'
// OAuthPrompt (reference/signin.md §2a, §2c), for the sign-in tests. It uses the bridge as
// channel, identity provider and token service (env as echo-bot.js: MicrosoftAppId,
// MicrosoftAppPassword, ToBotFrom…, ToChannelFrom…, OAuthUrl = the bridge), and
// CONNECTION_NAME (default "idp") as the OAuth connection. Unlike signin-bot.js (magic code and
// tokens/response), its turn runs the dialog for invokes too, as an SSO bot must: OAuthPrompt
// answers signin/tokenExchange itself.
//
// Any message starts the prompt unless one is running: OAuthPrompt asks the token service
// (GetToken, then GetSignInResource) and sends its OAuthCard. The prompt ends with the token a
// signin/tokenExchange invoke (SSO), a tokens/response event or a 6-digit magic code got it;
// the bot then says "signed in: <the first 16 hex digits of the token's SHA-256>" (never the
// token). The prompt answers the invokes itself (200, 400, 412: OAuthPrompt's own rules) through
// CloudAdapter's invokeResponse. Prints a JSON line per sign-in: {"event":"signedIn","hash":…}.
'use strict';

const crypto = require('crypto');
const { CloudAdapter, ConfigurationBotFrameworkAuthentication, ConversationState, MemoryStorage } = require('botbuilder');
const { DialogSet, DialogTurnStatus, OAuthPrompt, WaterfallDialog } = require('botbuilder-dialogs');

const { BridgeCredentialsFactory } = require('./bridge-credentials');
const { serve } = require('./http-host');

const hash = (token) => crypto.createHash('sha256').update(token).digest('hex').slice(0, 16);

function buildBot(connectionName) {
    const state = new ConversationState(new MemoryStorage());
    const dialogState = state.createProperty('dialogState');
    const dialogs = new DialogSet(dialogState);
    dialogs.add(new OAuthPrompt('login', { connectionName, title: 'Sign in', text: 'Please sign in to continue', timeout: 300000 }));
    dialogs.add(new WaterfallDialog('main', [
        (step) => step.beginDialog('login'),
        async (step) => {
            const token = step.result && step.result.token;
            if (!token) {
                await step.context.sendActivity('sign-in failed');
                return step.endDialog();
            }
            console.log(JSON.stringify({ event: 'signedIn', hash: hash(token) }));
            await step.context.sendActivity(`signed in: ${hash(token)}`);
            return step.endDialog();
        },
    ]));
    return {
        async run(context) {
            const dc = await dialogs.createContext(context);
            const a = context.activity;
            const promptInput = a.type === 'message' || a.type === 'invoke' || (a.type === 'event' && a.name === 'tokens/response');
            if (promptInput) {
                const result = await dc.continueDialog();
                if (result.status === DialogTurnStatus.empty && a.type === 'message') {
                    await dc.beginDialog('main');
                }
            }
            await state.saveChanges(context, false);
        },
    };
}

function main() {
    const env = { ...process.env };
    const credentials = new BridgeCredentialsFactory(env.MicrosoftAppId || '', env.MicrosoftAppPassword || '');
    const adapter = new CloudAdapter(new ConfigurationBotFrameworkAuthentication(env, credentials));
    adapter.onTurnError = async (context, error) => {
        console.error(`turn error: ${error && error.message}`);
        throw error;
    };
    serve(adapter, buildBot(env.CONNECTION_NAME || 'idp'));
}

main();
