// agents-bot.js: a real Microsoft 365 Agents SDK bot (@microsoft/agents-hosting 1.8.1, the
// successor of botbuilder: CloudAdapter, ActivityHandler, authorizeJWT) on node's own http
// server, for the Go interop test of channels/botframework (agents_interop_test.go): the bridge is
// its identity provider both ways.
//
// Behaviour:
//   - any message        -> "agent echo: <text>"
//   - conversationUpdate with a user among membersAdded -> "agent welcome"
//
// Every line the bot prints about a request is JSON ({"auth": ...}), for the test to read:
//   {"auth":"ok","iss":…,"aud":…}          a request whose token authorizeJWT accepted
//   {"auth":"refused","status":401,"error":…}  one it refused (nothing reaches the bot then)
//   {"token":"ok"|"refused","scope":…,"status":…}  each token request to the bridge
//
// Configuration: the SDK's own environment variables, read by loadAuthConfigFromEnv
// (agents-hosting auth/authConfiguration.js), as an operator sets them:
//   connections__serviceConnection__settings__clientId           the bot's app id (empty: anonymous)
//   connections__serviceConnection__settings__clientSecret       its password
//   connections__serviceConnection__settings__tenantId           botframework.com
//   connections__serviceConnection__settings__authorityEndpoint  <bridge public URL>: the SDK takes the
//        bridge's keys from <authority>/<tenant>/discovery/v2.0/keys (jwt-middleware buildJwksUri)
//        and, here, its tokens from <authority>/<tenant>/oauth2/v2.0/token
//   connections__serviceConnection__settings__issuers            https://bridge.local (the bridge's iss)
//   connections__serviceConnection__settings__validateIssuer     true
//   connectionsMap__0__serviceUrl=*  connectionsMap__0__connection=serviceConnection
//   PORT, EXIT_ON_STDIN_END          as for echo-bot.js (http-host.js)
//
// Outbound tokens: the SDK asks MSAL for <scope>/.default, scope = the inbound token's azp or
// appid, else https://api.botframework.com (cloudAdapter createConnectorClientWithIdentity). MSAL
// refuses an http authority (authority_uri_insecure), so BridgeTokenProvider makes the same
// client-credentials request itself; everything else is the SDK's.
'use strict';

const {
    ActivityHandler,
    CloudAdapter,
    ConnectionManager,
    MsalTokenProvider,
    authorizeJWT,
    loadAuthConfigFromEnv,
    resolveAuthority,
} = require('@microsoft/agents-hosting');

const { adaptResponse, readMessages, stopWith } = require('./http-host');
const http = require('http');

function report(line) {
    console.log(JSON.stringify(line));
}

// BridgeTokenProvider is MsalTokenProvider with its client-secret request made by fetch rather
// than MSAL: POST <authority>/<tenant>/oauth2/v2.0/token, grant_type=client_credentials,
// scope=<scope>/.default (RFC 6749 §4.4, as MSAL sends it); cached by the SDK as MSAL's are.
class BridgeTokenProvider extends MsalTokenProvider {
    async acquireAccessTokenViaSecret(authConfig, scope) {
        const authority = resolveAuthority(authConfig.authorityEndpoint || authConfig.authority, authConfig.tenantId);
        const res = await fetch(`${authority}/oauth2/v2.0/token`, {
            method: 'POST',
            body: new URLSearchParams({
                grant_type: 'client_credentials',
                client_id: authConfig.clientId,
                client_secret: authConfig.clientSecret,
                scope: `${scope}/.default`,
            }),
        });
        const body = await res.json().catch(() => ({}));
        if (!res.ok) {
            report({ token: 'refused', scope, status: res.status, error: body.error });
            throw new Error(`token endpoint answered ${res.status} ${body.error || ''}`);
        }
        report({ token: 'ok', scope, status: res.status });
        return body.access_token;
    }
}

class EchoAgent extends ActivityHandler {
    constructor() {
        super();
        this.onMessage(async (context, next) => {
            await context.sendActivity(`agent echo: ${(context.activity.text || '').trim()}`);
            await next();
        });
        this.onMembersAdded(async (context, next) => {
            for (const member of context.activity.membersAdded || []) {
                if (member.id !== context.activity.recipient.id) {
                    await context.sendActivity('agent welcome');
                }
            }
            await next();
        });
    }
}

// expressish gives node's response the express-style methods authorizeJWT and
// CloudAdapter.process call (status, send, setHeader, end).
function expressish(res) {
    const r = adaptResponse(res);
    r.status = (code) => {
        res.statusCode = code;
        return r;
    };
    const send = r.send;
    r.send = (body) => {
        send(body);
        return r;
    };
    r.setHeader = (name, value) => res.setHeader(name, value);
    Object.defineProperty(r, 'headersSent', { get: () => res.headersSent });
    Object.defineProperty(r, 'writableEnded', { get: () => res.writableEnded });
    return r;
}

function main() {
    const authConfig = loadAuthConfigFromEnv();
    const adapter = new CloudAdapter(authConfig);
    // The SDK's connection manager, with the token provider above for every connection.
    adapter.connectionManager = new ConnectionManager((cfg) => new BridgeTokenProvider(cfg), undefined, undefined, adapter.authConfig);
    adapter.onTurnError = async (context, error) => {
        console.error(`turn error: ${error && error.message}`);
        throw error;
    };
    const jwt = authorizeJWT(adapter.authConfig);
    const agent = new EchoAgent();

    const server = http.createServer(async (req, res) => {
        const { ok, body } = await readMessages(req, res);
        if (!ok) return;
        const request = { body, headers: req.headers, method: req.method };
        const response = expressish(res);
        let passed = false;
        await jwt(request, response, () => {
            passed = true;
        });
        if (!passed) {
            report({ auth: 'refused', status: res.statusCode });
            if (!res.writableEnded) res.end();
            return;
        }
        report({ auth: 'ok', iss: request.user && request.user.iss, aud: request.user && request.user.aud });
        try {
            await adapter.process(request, response, (context) => agent.run(context));
        } catch (err) {
            console.error(`process: ${err && err.message}`);
            if (!res.headersSent) res.statusCode = 500;
            res.end();
        }
    });
    server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
        console.log(`listening ${server.address().port}`);
    });
    stopWith(server);
}

main();
