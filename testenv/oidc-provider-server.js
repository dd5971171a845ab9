// A standards OpenID provider (oidc-provider 9.x) for tests: one confidential
// client (client_secret_basic, PKCE S256, authorization_code + refresh_token),
// refresh tokens on every code, devInteractions login/consent forms (any
// login, any password). Test-only: development signing keys, http issuer.
//
// Environment: PORT (required), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI.
// Optional knobs (unset: oidc-provider's defaults):
//   POST_LOGOUT_REDIRECT_URI  registered for RP-initiated logout
//   ACCESS_TOKEN_TTL, ID_TOKEN_TTL  lifetimes in seconds
//   ROTATE_REFRESH_TOKEN  "always" (every refresh consumes the token and issues
//                         a new one) or "never"
//   EVENT_LOG=1           print provider events on stdout, one line each:
//                         "oidc-event {json}" (token ids are hashed)
// Prints "oidc-provider listening on <issuer>" when ready.
'use strict';

(async () => {
  const { default: Provider } = await import('oidc-provider');
  const port = Number(process.env.PORT);
  if (!port) throw new Error('PORT is required');
  const issuer = `http://127.0.0.1:${port}`;
  const { createHash } = require('node:crypto');
  const seconds = (name) => {
    const v = process.env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive number of seconds`);
    return n;
  };
  const ttl = {};
  if (seconds('ACCESS_TOKEN_TTL')) ttl.AccessToken = seconds('ACCESS_TOKEN_TTL');
  if (seconds('ID_TOKEN_TTL')) ttl.IdToken = seconds('ID_TOKEN_TTL');
  const rotation = process.env.ROTATE_REFRESH_TOKEN;
  if (rotation && rotation !== 'always' && rotation !== 'never') throw new Error('ROTATE_REFRESH_TOKEN must be always or never');
  const extra = {};
  if (Object.keys(ttl).length) extra.ttl = ttl;
  if (rotation) extra.rotateRefreshToken = () => rotation === 'always';
  const client = {};
  if (process.env.POST_LOGOUT_REDIRECT_URI) client.post_logout_redirect_uris = [process.env.POST_LOGOUT_REDIRECT_URI];
  const accountClaims = (id) => ({ sub: id, email: `${id}@example.com`, email_verified: true, name: id });
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.CLIENT_ID || 'test-client',
      client_secret: process.env.CLIENT_SECRET || 'test-secret',
      redirect_uris: [process.env.REDIRECT_URI || 'http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...client,
    }],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    issueRefreshToken: async () => true,
    // Like Cognito, put the granted scopes' claims (email, name) in the ID
    // token itself, not only at the userinfo endpoint.
    conformIdTokenClaims: false,
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => accountClaims(id) }),
    ...extra,
  });
  if (process.env.EVENT_LOG === '1') {
    const hash = (v) => (v ? createHash('sha256').update(String(v)).digest('hex').slice(0, 12) : undefined);
    const emit = provider.emit.bind(provider);
    provider.emit = (name, ...args) => {
      const e = { event: name };
      const [first] = args;
      if (first && first.oidc) { // a request context
        e.grant_type = first.oidc.params?.grant_type;
        e.client_id = first.oidc.client?.clientId;
        e.refresh_token = hash(first.oidc.entities?.RefreshToken?.jti);
      } else if (first && first.kind && first.jti) { // a token model
        e.kind = first.kind;
        e.id = hash(first.jti);
        e.account = first.accountId;
      }
      if (name.endsWith('.error') || name === 'server_error') e.error = String(args.find((a) => a instanceof Error) || '');
      console.log(`oidc-event ${JSON.stringify(e)}`);
      return emit(name, ...args);
    };
  }
  provider.listen(port, '127.0.0.1', () => {
    console.log(`oidc-provider listening on ${issuer}`);
  });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
