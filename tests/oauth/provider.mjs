// A real authorization server for callguard's tests: node `oidc-provider` (OpenID
// certified), on loopback. Clients: `agent` (client_credentials, JWT access tokens, RS256,
// `at+jwt`), `opaque-agent` (client_credentials, opaque tokens) and `resource-server` (the
// client the example server introspects opaque tokens as).
// Environment: PORT, KEYS (comma-separated PEM files in tests/data/oauth: the first signs,
// all are published), CLIENT_SECRET.
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const keyDir = new URL('../data/oauth/', import.meta.url);
const keys = process.env.KEYS.split(',').map((name) => ({
  ...createPrivateKey(readFileSync(new URL(`${name}.pem`, keyDir))).export({ format: 'jwk' }),
  kid: name,
  alg: 'RS256',
  use: 'sig',
}));
const secret = process.env.CLIENT_SECRET;
const scope = 'mcp:call mcp:admin refunds:write tools:call orders:write';

const provider = new Provider(`http://127.0.0.1:${port}`, {
  jwks: { keys },
  scopes: ['openid', ...scope.split(' ')],
  clients: ['agent', 'opaque-agent', 'resource-server'].map((client_id) => ({
    client_id,
    client_secret: secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    scope,
  })),
  features: {
    clientCredentials: { enabled: true },
    // The resource server (a confidential client) may introspect any token.
    introspection: { enabled: true, allowedPolicy: async (ctx, client) => client.clientId === 'resource-server' },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource, client) => ({
        scope,
        audience: resource,
        accessTokenTTL: Number(process.env.TOKEN_TTL || 300),
        accessTokenFormat: client.clientId === 'opaque-agent' ? 'opaque' : 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port}`);
});
