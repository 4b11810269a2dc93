// bridge-credentials.js: the credentials factory the harness's bots use when the bridge is their
// identity provider (botframework.md §8 B), shared by echo-bot.js and signin-bot.js.
'use strict';

const { PasswordServiceClientCredentialFactory, TokenCredentials } = require('botframework-connector');

// BridgeCredentialsFactory gets client-credentials tokens from ${loginEndpoint}/oauth2/v2.0/token
// (the bridge's dev token endpoint) and caches them until five minutes before they expire, as
// botbuilder's own credentials do.
class BridgeCredentialsFactory extends PasswordServiceClientCredentialFactory {
    constructor(appId, password) {
        super(appId, password);
        this.cache = new Map();
    }

    async createCredentials(appId, audience, loginEndpoint, validateAuthority) {
        if (await this.isAuthenticationDisabled()) {
            return super.createCredentials(appId, audience, loginEndpoint, validateAuthority);
        }
        if (!(await this.isValidAppId(appId))) {
            throw new Error('Invalid appId.');
        }
        const key = `${loginEndpoint}|${audience}`;
        const hit = this.cache.get(key);
        if (hit && hit.renewAt > Date.now()) {
            return new TokenCredentials(hit.token);
        }
        const res = await fetch(`${loginEndpoint}/oauth2/v2.0/token`, {
            method: 'POST',
            body: new URLSearchParams({
                grant_type: 'client_credentials',
                client_id: appId,
                client_secret: this.password,
                scope: `${audience}/.default`,
            }),
        });
        if (!res.ok) {
            throw new Error(`token endpoint answered ${res.status}`);
        }
        const body = await res.json();
        const lifetime = Number(body.expires_in || 0) * 1000;
        this.cache.set(key, { token: body.access_token, renewAt: Date.now() + lifetime - 5 * 60 * 1000 });
        return new TokenCredentials(body.access_token);
    }
}

module.exports = { BridgeCredentialsFactory };
