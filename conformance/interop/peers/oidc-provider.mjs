// oidc-provider.mjs: a real OpenID provider (npm oidc-provider 8.8.1) on 127.0.0.1 for the
// sign-in tests (reference/signin.md §3: the identity provider of an OAuth connection).
//
// One confidential client and one user:
//   client  CLIENT_ID / CLIENT_SECRET, redirect URI REDIRECT_URI (the bridge's
//           /.auth/web/redirect), authorization code grant with PKCE S256 (the library requires
//           PKCE for every authorization code request by default), client_secret_basic or _post.
//   user    "alice" (name Alice Example); any other login is unknown to findAccount.
// The login and consent pages are the library's own development interactions (devInteractions):
// plain HTML forms a test posts to over HTTP with a cookie jar; the password field is not
// checked by them. Tokens are opaque access tokens (valid at /me) and RS256 id_tokens with the
// library's generated development keys.
//
// Environment: PORT (0: any free port), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI. Prints
// "listening <port>" once serving; exits when stdin closes.
import http from 'node:http';
import Provider from 'oidc-provider';

const users = { alice: { sub: 'alice', name: 'Alice Example', email: 'alice@example.test' } };

const server = http.createServer();
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    }],
    async findAccount(ctx, id) {
      const user = users[id];
      if (!user) return undefined;
      return { accountId: id, async claims() { return { ...user }; } };
    },
    claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
    cookies: { keys: ['bfbridge-interop-test-cookie-key'] },
    features: { devInteractions: { enabled: true } },
    ttl: { AccessToken: 3600, IdToken: 3600 },
  });
  server.on('request', provider.callback());
  process.stdout.write(`listening ${port}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
