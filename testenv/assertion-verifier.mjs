// An upstream app that trusts nothing but X-Auth-Assertion, verified with
// jose (panva/jose: an implementation independent of caddy-cognito) against
// the JWKS Caddy publishes, as the README tells app authors to.
//
// Environment: PORT, JWKS_URL, ISSUER, AUDIENCE (all required).
//
//   GET /__ready            200
//   POST /__verify          {"token", "audience"?, "currentDate"? (unix s), "fresh"? (bool)}
//                           verifies one token; fresh fetches the JWKS now
//                           instead of using the long-lived set
//                           → {"ok", "code", "message", "kid", "payload"}
//   anything else           verifies the request's X-Auth-Assertion with the
//                           long-lived set: 200 or 401, same JSON plus
//                           "received": every header value whose name is an
//                           assertion header in any spelling
//                           (X-Auth-Assertion, x_auth_assertion, …)
//
// The long-lived set refetches on an unknown kid at once (cooldownDuration
// 0), so that a key rotated in is found on its first token.
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const port = Number(need('PORT'));
const jwksURL = new URL(need('JWKS_URL'));
const issuer = need('ISSUER');
const audience = need('AUDIENCE');
const longLived = createRemoteJWKSet(jwksURL, { cooldownDuration: 0 });

async function verify(token, opts = {}) {
  if (!token) return { ok: false, code: 'NO_ASSERTION', message: 'no X-Auth-Assertion header' };
  const keys = opts.fresh ? createRemoteJWKSet(jwksURL) : longLived;
  const options = { issuer, audience: opts.audience || audience, algorithms: ['ES256'] };
  if (opts.currentDate) options.currentDate = new Date(opts.currentDate * 1000);
  try {
    const { payload, protectedHeader } = await jwtVerify(token, keys, options);
    return { ok: true, kid: protectedHeader.kid, payload };
  } catch (err) {
    let kid;
    try { kid = decodeProtectedHeader(token).kid; } catch { /* not a JWS */ }
    return { ok: false, code: err.code || err.name, message: err.message, kid };
  }
}

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'X-Verifier': 'jose' });
  res.end(JSON.stringify(body));
}

http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', async () => {
    try {
      if (req.url === '/__ready') return send(res, 200, { ok: true });
      if (req.url === '/__verify' && req.method === 'POST') {
        const { token, ...opts } = JSON.parse(body);
        return send(res, 200, await verify(token, opts));
      }
      const received = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        if (req.rawHeaders[i].toLowerCase().replaceAll('_', '-') === 'x-auth-assertion') {
          received.push(req.rawHeaders[i + 1]);
        }
      }
      const v = await verify(received.length === 1 ? received[0] : undefined);
      if (received.length > 1) Object.assign(v, { ok: false, code: 'MANY_ASSERTIONS' });
      send(res, v.ok ? 200 : 401, { ...v, received, user: req.headers['x-auth-user'] });
    } catch (err) {
      send(res, 500, { ok: false, code: 'VERIFIER_ERROR', message: String(err) });
    }
  });
}).listen(port, '127.0.0.1', () => console.log(`assertion verifier listening on ${port}`));
