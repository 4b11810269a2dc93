// signin-bot.js: a real botbuilder 4.23.3 bot (CloudAdapter) that signs its user in with
// botbuilder-dialogs' OAuthPrompt, for the Go tests of the bridge's token service
// (channels/signin; reference/signin.md §2a, §2b, §6).
//
// Behaviour:
//   - "logout"          -> UserTokenClient.signOutUser, then getUserToken; prints
//                          {"event":"signedOut","token":<what GetToken then gives, or null>}
//   - any other message -> runs the dialog: OAuthPrompt (connection CONNECTION_NAME, default
//                          "idp"), which sends an OAuthCard and then takes a 6-digit magic code
//                          from a message or the token from a tokens/response event. On success
//                          it prints {"event":"token","token":…,"via":"magic code"|"tokens/response"}
//                          and answers "You are signed in." (never the token itself).
// The token is printed on stdout for the test to check, and nowhere else.
//
// Environment: as echo-bot.js (the bridge as identity provider both ways), plus OAuthUrl = the
// bridge, and CONNECTION_NAME.
'use strict';

const {
    ActivityHandler,
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConversationState,
    MemoryStorage,
} = require('botbuilder');
const { DialogSet, DialogTurnStatus, OAuthPrompt, WaterfallDialog } = require('botbuilder-dialogs');

const { BridgeCredentialsFactory } = require('./bridge-credentials');
const { serve } = require('./http-host');

const CONNECTION = process.env.CONNECTION_NAME || 'idp';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

class SignInBot extends ActivityHandler {
    constructor(conversationState) {
        super();
        this.conversationState = conversationState;
        this.dialogs = new DialogSet(conversationState.createProperty('dialogState'));
        this.dialogs.add(new OAuthPrompt('login', {
            connectionName: CONNECTION, title: 'Sign in', text: 'Please sign in to continue.', timeout: 300000,
        }));
        this.dialogs.add(new WaterfallDialog('main', [
            async (step) => step.beginDialog('login'),
            async (step) => {
                const a = step.context.activity;
                const via = a.type === 'event' ? a.name : 'magic code';
                if (step.result && step.result.token) {
                    out({ event: 'token', token: step.result.token, via, user: a.from && a.from.id });
                    await step.context.sendActivity('You are signed in.');
                } else {
                    out({ event: 'noToken', via });
                    await step.context.sendActivity('Sign-in did not complete.');
                }
                return step.endDialog();
            },
        ]));
        this.onMessage(async (context, next) => {
            if ((context.activity.text || '').trim() === 'logout') {
                const client = context.turnState.get(context.adapter.UserTokenClientKey);
                const { from, channelId } = context.activity;
                await client.signOutUser(from.id, CONNECTION, channelId);
                const after = await client.getUserToken(from.id, CONNECTION, channelId, undefined);
                out({ event: 'signedOut', token: (after && after.token) || null });
                await context.sendActivity('You are signed out.');
            } else {
                await this.runDialog(context);
            }
            await next();
        });
        this.onTokenResponseEvent(async (context, next) => {
            out({ event: 'tokenResponseEvent' });
            await this.runDialog(context);
            await next();
        });
        this.onDialog(async (context, next) => {
            await this.conversationState.saveChanges(context, false);
            await next();
        });
    }

    async runDialog(context) {
        const dc = await this.dialogs.createContext(context);
        const result = await dc.continueDialog();
        if (result.status === DialogTurnStatus.empty) {
            await dc.beginDialog('main');
        }
    }
}

function main() {
    const env = { ...process.env };
    const credentials = new BridgeCredentialsFactory(env.MicrosoftAppId || '', env.MicrosoftAppPassword || '');
    const adapter = new CloudAdapter(new ConfigurationBotFrameworkAuthentication(env, credentials));
    adapter.onTurnError = async (context, error) => {
        console.error(`turn error: ${error && error.message}`);
        throw error;
    };
    serve(adapter, new SignInBot(new ConversationState(new MemoryStorage())));
}

main();
