// oidc-sso.js: an OpenID provider (npm oidc-provider 8.8.1) on 127.0.0.1 for the single sign-on
// tests: the identity provider of the page that hosts Web Chat, which gets the signed-in user's
// token for the bot's API and hands it to the bot in signin/tokenExchange (reference/signin.md
// §2c, §3 "SSO"). The issuer is http://127.0.0.1:<port>; it prints "listening <port>".
//
// Clients (env SSO_CLIENT_SECRET is their secret):
//   webchat-page  the page's own client: client_credentials for a resource (RFC 8707) gives a
//                 JWT access token whose aud is that resource (the Token Exchange URL), signed
//                 with the provider's keys published at jwks_uri, as Entra ID issues a token for
//                 an API's scope to the SPA that MSAL serves.
//   bridge        the bridge's client for its sign-in pages (authorization code + PKCE), so that
//                 the connection's discovery is complete.
// Resources: any absolute URI; scope access_as_user.
'use strict';

const { stopWith } = require('../bots/http-host');

const http = require('http');

async function main() {
    const { default: Provider } = await import('oidc-provider');
    const secret = process.env.SSO_CLIENT_SECRET || 'sso-client-secret-0123456789';
    const server = http.createServer();
    await new Promise((resolve) => server.listen(Number(process.env.PORT || 0), '127.0.0.1', resolve));
    const port = server.address().port;
    const issuer = `http://127.0.0.1:${port}`;
    const provider = new Provider(issuer, {
        clients: [
            { client_id: 'webchat-page', client_secret: secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
            { client_id: 'bridge', client_secret: secret, grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
              redirect_uris: [process.env.BRIDGE_REDIRECT || 'http://127.0.0.1/.auth/web/redirect'] },
        ],
        features: {
            clientCredentials: { enabled: true },
            devInteractions: { enabled: true },
            resourceIndicators: {
                enabled: true,
                defaultResource: () => undefined,
                useGrantedResource: () => true,
                getResourceServerInfo: (_ctx, resource) => ({
                    audience: resource, scope: 'access_as_user', accessTokenFormat: 'jwt', accessTokenTTL: 600,
                }),
            },
        },
        scopes: ['openid', 'profile', 'email', 'offline_access', 'access_as_user'],
    });
    provider.on('server_error', (_ctx, err) => console.error(`server_error: ${err && err.message}`));
    server.on('request', provider.callback());
    console.log(`listening ${port}`);
    stopWith(server);
}

main().catch((err) => {
    console.error(err && err.stack);
    process.exit(1);
});
