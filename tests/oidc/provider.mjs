// A real OpenID provider (oidc-provider, a certified implementation) for the identity tests.
//
//   node provider.mjs '<settings JSON>'
//
// Settings: { "port": 0, "keys_file": "path", "rotate": false, "audience": "urn:llm-bridge",
//             "clients": [{ "client_id", "client_secret", "alg": "RS256|ES256|EdDSA",
//                           "claims": { "team": "...", "role": "..." } }],
//             "console": { "client_id", "client_secret", "redirect_uri" },
//             "users": { "<login>": { "role": "admin", "name": "..." } } }
//
// The signing keys (one RS256, one ES256, one EdDSA key) are generated on the first start and kept in
// `keys_file`; `rotate` generates a new set that signs from now on, and publishes the old set after
// it (unless `forget`). Clients get JWT access tokens with the client credentials grant, for the audience asked for
// with a resource indicator (RFC 8707), carrying the client's `claims`. With `console`, that client
// signs users in with the authorization code flow through the provider's development login page
// (any password); the ID token carries the user's `users` claims (`role`, `name`).
//
// Once listening it prints one JSON line: { "issuer", "port", "keys": [{ "kid", "alg", "pem",
// "public_pem" }] }: the keys of the set that signs, private in PKCS#8 PEM and public in SPKI PEM, so
// a test can also make tokens the provider never would (expired, not yet valid, forged).
import { createServer } from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const settings = JSON.parse(process.argv[2] ?? '{}');
const audience = settings.audience ?? 'urn:llm-bridge';
const clients = settings.clients ?? [];
const users = settings.users ?? {};
const console_ = settings.console;

async function keySet() {
  const set = [];
  for (const [alg, options] of [['RS256', { modulusLength: 2048 }], ['ES256', {}], ['EdDSA', { crv: 'Ed25519' }]]) {
    const { privateKey } = await jose.generateKeyPair(alg, { ...options, extractable: true });
    const jwk = await jose.exportJWK(privateKey);
    set.push({ ...jwk, alg, use: 'sig', kid: randomUUID() });
  }
  return set;
}

let sets = settings.keys_file && existsSync(settings.keys_file)
  ? JSON.parse(readFileSync(settings.keys_file, 'utf8'))
  : [];
if (sets.length === 0 || settings.rotate) sets = [await keySet(), ...sets];
// `forget`: the older sets are withdrawn, no longer published.
if (settings.forget) sets = [sets[0]];
if (settings.keys_file) writeFileSync(settings.keys_file, JSON.stringify(sets));
const signing = sets[0];

const server = createServer();
await new Promise((resolve) => server.listen(settings.port ?? 0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const byId = new Map(clients.map((c) => [c.client_id, c]));
const provider = new Provider(issuer, {
  clients: [
    ...clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    })),
    ...(console_ ? [{
      client_id: console_.client_id,
      client_secret: console_.client_secret,
      grant_types: ['authorization_code'],
      redirect_uris: [console_.redirect_uri],
      response_types: ['code'],
    }] : []),
  ],
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, ...(users[id] ?? {}) }),
  }),
  claims: { openid: ['sub'], profile: ['name', 'role'] },
  conformIdTokenClaims: false,
  jwks: { keys: sets.flat() },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: Boolean(console_) },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: 'api',
        audience: resource,
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: byId.get(client.clientId)?.alg ?? 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => byId.get(token.clientId)?.claims ?? {},
});
server.on('request', provider.callback());

const keys = signing.map((jwk) => ({
  kid: jwk.kid,
  alg: jwk.alg,
  pem: createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }),
  public_pem: createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }),
}));
process.stdout.write(`${JSON.stringify({ issuer, port, keys })}\n`);
