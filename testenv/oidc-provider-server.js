// A standards OpenID provider (oidc-provider 9.x) for tests: one confidential
// client (client_secret_basic, PKCE S256, authorization_code + refresh_token),
// refresh tokens on every code, devInteractions login/consent forms (any
// login, any password). Test-only: development signing keys, http issuer.
//
// Environment: PORT (required), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI.
// Prints "oidc-provider listening on <issuer>" when ready.
'use strict';

(async () => {
  const { default: Provider } = await import('oidc-provider');
  const port = Number(process.env.PORT);
  if (!port) throw new Error('PORT is required');
  const issuer = `http://127.0.0.1:${port}`;
  const accountClaims = (id) => ({ sub: id, email: `${id}@example.com`, email_verified: true, name: id });
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.CLIENT_ID || 'test-client',
      client_secret: process.env.CLIENT_SECRET || 'test-secret',
      redirect_uris: [process.env.REDIRECT_URI || 'http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
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
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => accountClaims(id) }),
  });
  provider.listen(port, '127.0.0.1', () => {
    console.log(`oidc-provider listening on ${issuer}`);
  });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
