#!/usr/bin/env node
// Patches node_modules/cognito-local (5.3.x) so that its hosted UI behaves
// like real Amazon Cognito where caddy-cognito's browser tests depend on it.
// Runs from package.json "postinstall", so `npm ci` applies it everywhere.
//
// Deviations fixed (each edit below says why):
//  1. nonce: real Cognito's /oauth2/authorize takes `nonce` and the ID token
//     from /oauth2/token (authorization_code) carries it as the `nonce` claim
//     (only the ID token, only when given). cognito-local dropped it: now the
//     login form carries it, the authorization code stores it, the token
//     generator puts it in the ID token.
//  2. GET /logout?client_id=&logout_uri=: absent. Real Cognito checks that the
//     client exists and logout_uri is one of its LogoutURLs (exact match),
//     else shows an error page (400 here); on success it ends the hosted-UI
//     session and redirects (302) to logout_uri. cognito-local keeps no
//     hosted-UI session (no cookie), so there is nothing to clear.
//  3. POST /oauth2/revoke: absent. Real Cognito revokes a refresh token (200,
//     empty body; also for an unknown or already revoked token, RFC 7009);
//     afterwards grant_type=refresh_token with it is 400 invalid_grant.
//     400 invalid_request (no token, revocation disabled for the client),
//     invalid_client (client authentication), unauthorized_client (token of
//     another client), unsupported_token_type (an access or ID token).
//  4. Client authentication at /oauth2/token (and /oauth2/revoke): real
//     Cognito requires the secret of a client that has one (client_secret_basic
//     or client_secret_post; 400 invalid_client otherwise) and takes client_id
//     from the Authorization header. cognito-local ignored the secret.
//  5. Refresh tokens are bound to the app client they were issued to (real
//     Cognito: another client gets invalid_grant). The refresh token now
//     carries a client_id claim (it is a cognito-local debugging JWT, not
//     Cognito's opaque token) that /oauth2/token and /oauth2/revoke check.
//  6. The login form HTML-escapes what it echoes (state, nonce, ...): real
//     Cognito round-trips any state value; cognito-local broke on a quote.
//  7. The discovery document said issuer http://localhost:9229/{pool} on every
//     port; tokens use http://{HOST}:{PORT}/{pool}. It now uses the tokens'
//     issuer domain.
//  8. CreateGroup of an existing name: real Cognito fails with
//     GroupExistsException; cognito-local replaced the group with an empty
//     one, silently dropping its members (a test adding its own user to the
//     shared "admins" group took alice out of it).
// Already like real Cognito (checked, not patched): an authorization code is
// single-use (a replay is 400 invalid_grant); grant_type=refresh_token returns
// a new access and ID token and no refresh_token.
//
// Usage: node patch-cognito-local.js          apply (idempotent)
//        node patch-cognito-local.js --check  exit 1 unless applied and current
// COGNITO_LOCAL_DIR overrides the package directory (default
// ./node_modules/cognito-local next to this file).
//
// How: each edit replaces an exact text that must occur exactly `count`
// times, else nothing is written and the script exits 1 (a different
// cognito-local version needs this script updated). A patched file starts
// with a marker comment naming the patch id (a hash of the edits) and the
// pristine file is kept next to it as <file>.caddy-cognito-orig, so a changed
// script re-patches from the pristine text and a second run changes nothing.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const crypto = require("node:crypto");
const vm = require("node:vm");

const TAG = "[caddy-cognito patch]";
const MARKER = "// caddy-cognito testenv patch";
const ORIG_SUFFIX = ".caddy-cognito-orig";

const ROUTES_HELPERS = `var import_pkce = require("./pkce");
// ${TAG} helpers for the patched routes below.
// Real Cognito round-trips any state/nonce: escape what the form echoes.
const __ccEscape = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => \`&#\${c.charCodeAt(0)};\`);
const __ccEscapeAll = (p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, __ccEscape(v)]));
// The unverified payload of a JWT (tokens are looked up in the store anyway).
function __ccClaims(token) {
  try {
    return JSON.parse(Buffer.from(String(token).split(".")[1] ?? "", "base64url").toString("utf8"));
  } catch {
    return null;
  }
}
// Real Cognito authenticates the app client at /oauth2/token and /oauth2/revoke:
// client_secret_basic (Authorization: Basic base64(client_id:client_secret), the
// body's client_id then optional) or client_secret_post; a client with a secret
// must present it. Failures are 400 invalid_client.
async function __ccAuthenticateClient(services, req, body, ctx) {
  const fail = (error, error_description) => ({ error, error_description });
  let clientId = body.client_id;
  let secret = body.client_secret;
  const header = req.headers.authorization;
  if (header) {
    const m = /^Basic\\s+(\\S+)\\s*$/i.exec(header);
    const decoded = m ? Buffer.from(m[1], "base64").toString("utf8") : "";
    const i = decoded.indexOf(":");
    if (i < 0) return fail("invalid_client", "Malformed Authorization header");
    const formDecode = (s) => {
      try {
        return decodeURIComponent(s.replace(/\\+/g, " "));
      } catch {
        return s;
      }
    };
    const basicId = formDecode(decoded.slice(0, i));
    if (clientId && clientId !== basicId) return fail("invalid_client", "client_id does not match the Authorization header");
    clientId = basicId;
    secret = formDecode(decoded.slice(i + 1));
  }
  if (!clientId || typeof clientId !== "string") return fail("invalid_request", "Missing client_id");
  const appClient = await services.cognito.getAppClient(ctx, clientId).catch(() => null);
  if (!appClient) return fail("invalid_client", "Unknown client");
  if (appClient.ClientSecret && secret !== appClient.ClientSecret) return fail("invalid_client", "Client authentication failed");
  return { appClient };
}
`;

const NEW_ROUTES = `      error_description: \`Unsupported grant_type: \${grant_type}\`
    });
  });
  // ${TAG} GET /logout (absent from cognito-local). Real Cognito: client_id must
  // name an app client and logout_uri must be one of its LogoutURLs (exact
  // match), else an error page; then it ends the hosted-UI session and redirects
  // to logout_uri. cognito-local keeps no hosted-UI session: nothing to clear.
  app.get("/logout", async (req, res) => {
    const ctx = { logger: req.log };
    const { client_id, logout_uri } = req.query;
    const errorPage = (message) => res.status(400).type("text/html").send(
      \`<!DOCTYPE html><html><head><title>Error</title></head><body><p>An error was encountered with the requested page.</p><p>\${__ccEscape(message)}</p></body></html>\`
    );
    if (typeof client_id !== "string" || !client_id) return errorPage("Required parameter client_id is missing");
    const appClient = await services.cognito.getAppClient(ctx, client_id).catch(() => null);
    if (!appClient) return errorPage("Invalid client_id");
    if (typeof logout_uri !== "string" || !logout_uri) return errorPage("Required parameter logout_uri is missing");
    if (!(appClient.LogoutURLs ?? []).includes(logout_uri)) {
      return errorPage("logout_uri is not a sign-out URL of this app client");
    }
    res.set("Cache-Control", "no-store");
    res.redirect(302, logout_uri);
  });
  // ${TAG} POST /oauth2/revoke (absent from cognito-local). Real Cognito: form
  // token=<refresh token>, client authenticated like at /oauth2/token; 200 with an
  // empty body, also for an unknown or already revoked token (RFC 7009); the
  // refresh token is then invalid_grant at /oauth2/token.
  app.post("/oauth2/revoke", async (req, res) => {
    const ctx = { logger: req.log };
    const oauthError = (error, error_description) => res.status(400).json({ error, error_description });
    if (!req.is("application/x-www-form-urlencoded")) {
      return oauthError("invalid_request", "Content-Type must be application/x-www-form-urlencoded");
    }
    const body = req.body ?? {};
    const auth = await __ccAuthenticateClient(services, req, body, ctx);
    if (auth.error) return oauthError(auth.error, auth.error_description);
    const { appClient } = auth;
    const token = body.token;
    if (!token || typeof token !== "string") return oauthError("invalid_request", "Missing token");
    if (appClient.EnableTokenRevocation === false) {
      return oauthError("invalid_request", "Token revocation is disabled for this app client");
    }
    const claims = __ccClaims(token);
    if (claims?.token_use === "access" || claims?.token_use === "id") {
      return oauthError("unsupported_token_type", "Only refresh tokens can be revoked");
    }
    if (claims?.client_id && claims.client_id !== appClient.ClientId) {
      return oauthError("unauthorized_client", "The token was not issued to this client");
    }
    const userPool = await services.cognito.getUserPoolForClientId(ctx, appClient.ClientId);
    const user = await userPool.getUserByRefreshToken(ctx, token);
    if (user) {
      await userPool.saveUser(ctx, {
        ...user,
        RefreshTokens: (user.RefreshTokens ?? []).filter((t) => t !== token)
      });
    }
    res.status(200).end();
  });
}
`;

// file (relative to the package) -> edits { why, find, replace, count }
const PATCHES = {
  "lib/oauth2/routes.js": [
    {
      why: "helpers: form escaping, JWT payload, client authentication",
      find: 'var import_pkce = require("./pkce");\n',
      replace: ROUTES_HELPERS,
    },
    {
      why: "escape what the login form echoes",
      find: "const LOGIN_FORM = (params) => `",
      replace: "const LOGIN_FORM = (rawParams, params = __ccEscapeAll(rawParams)) => `",
    },
    {
      why: "the login form carries the nonce to the POST",
      find: '  <input type="hidden" name="state" value="${params.state}" />\n',
      replace:
        '  <input type="hidden" name="state" value="${params.state}" />\n' +
        '  <input type="hidden" name="nonce" value="${params.nonce}" />\n',
    },
    {
      why: "GET /oauth2/authorize reads nonce",
      find: "      scope,\n      state\n    } = req.query;",
      replace: `      scope,\n      state,\n      nonce // ${TAG} real Cognito takes a nonce\n    } = req.query;`,
    },
    {
      why: "POST /oauth2/authorize reads nonce",
      find: "      state,\n      username,\n      password\n    } = req.body;",
      replace: `      state,\n      nonce, // ${TAG} real Cognito takes a nonce\n      username,\n      password\n    } = req.body;`,
    },
    {
      why: "both renderings of the login form (first visit, wrong password) keep the nonce",
      find: 'state: state ?? ""',
      replace: 'state: state ?? "", nonce: nonce ?? ""',
      count: 2,
    },
    {
      why: "the authorization code stores the nonce",
      find: "      state: state ?? void 0\n    });",
      replace:
        "      state: state ?? void 0,\n" +
        `      nonce: typeof nonce === "string" && nonce ? nonce : void 0 // ${TAG} for the ID token\n` +
        "    });",
    },
    {
      why: "client authentication at /oauth2/token",
      find: "    const { grant_type } = body;\n    const ctx = { logger: req.log };\n",
      replace:
        "    const { grant_type } = body;\n    const ctx = { logger: req.log };\n" +
        `    // ${TAG} real Cognito authenticates the client (secret required when it has\n` +
        "    // one; client_id may come from the Basic header alone): 400 invalid_client.\n" +
        "    const ccAuth = await __ccAuthenticateClient(services, req, body, ctx);\n" +
        "    if (ccAuth.error) return res.status(400).json(ccAuth);\n" +
        "    body.client_id = ccAuth.appClient.ClientId;\n",
    },
    {
      why: "the code's nonce goes into the ID token",
      find: '        void 0,\n        "HostedAuth"\n      );',
      replace: `        void 0,\n        "HostedAuth",\n        { nonce: stored.nonce } // ${TAG} ID token nonce claim\n      );`,
    },
    {
      why: "a refresh token works only for the client it was issued to",
      find: "      const user = await userPool.getUserByRefreshToken(ctx, refresh_token);\n",
      replace:
        `      // ${TAG} real Cognito binds a refresh token to its app client.\n` +
        "      const ccIssuedTo = __ccClaims(refresh_token)?.client_id;\n" +
        "      const user = ccIssuedTo && ccIssuedTo !== client_id ? null : await userPool.getUserByRefreshToken(ctx, refresh_token);\n",
    },
    {
      why: "add GET /logout and POST /oauth2/revoke",
      find: "      error_description: `Unsupported grant_type: ${grant_type}`\n    });\n  });\n}\n",
      replace: NEW_ROUTES,
    },
  ],
  "lib/services/tokenGenerator.js": [
    {
      why: "generate() takes the hosted-UI request's nonce",
      find: "  async generate(ctx, user, userGroups, userPoolClient, clientMetadata, source) {\n",
      replace:
        `  // ${TAG} hostedUI: { nonce } of the /oauth2/authorize request, if any.\n` +
        "  async generate(ctx, user, userGroups, userPoolClient, clientMetadata, source, hostedUI) {\n",
    },
    {
      why: "the nonce becomes the ID token's nonce claim",
      find: "    const issuer = `${this.tokenConfig.IssuerDomain}/${userPoolClient.UserPoolId}`;\n",
      replace:
        `    // ${TAG} real Cognito echoes the authorize request's nonce in the ID token\n` +
        "    // (only there, only when given; after PreTokenGeneration, which cannot touch it).\n" +
        "    if (hostedUI?.nonce) idToken.nonce = hostedUI.nonce;\n" +
        "    const issuer = `${this.tokenConfig.IssuerDomain}/${userPoolClient.UserPoolId}`;\n",
    },
    {
      why: "the refresh token records its app client",
      find: "          jti: uuid.v4()\n        },\n",
      replace: `          jti: uuid.v4(),\n          client_id: userPoolClient.ClientId // ${TAG} bound to its client\n        },\n`,
    },
  ],
  "lib/targets/createGroup.js": [
    {
      why: "an existing group name is GroupExistsException, and the group keeps its members",
      find: "  const userPool = await cognito.getUserPool(ctx, req.UserPoolId);\n  const now = clock.get();\n",
      replace:
        "  const userPool = await cognito.getUserPool(ctx, req.UserPoolId);\n" +
        `  // ${TAG} real Cognito refuses an existing name; saving would drop its members.\n` +
        // getGroupByGroupName throws while the pool has no group at all.
        "  if ((await userPool.listGroups(ctx)).some((g) => g.GroupName === req.GroupName)) {\n" +
        '    const { CognitoError } = require("../errors");\n' +
        '    throw new CognitoError("GroupExistsException", "A group with the name already exists.");\n' +
        "  }\n" +
        "  const now = clock.get();\n",
    },
  ],
  "lib/server/server.js": [
    {
      why: "discovery issuer/jwks_uri follow the tokens' issuer domain (PORT, HOST)",
      find: "http://localhost:9229/${req.params.userPoolId}",
      replace: '${services?.tokenGenerator?.tokenConfig?.IssuerDomain ?? "http://localhost:9229"}/${req.params.userPoolId}',
      count: 2,
    },
    {
      why: "comment for the edit above",
      find: '  app.get("/:userPoolId/.well-known/openid-configuration", (req, res) => {\n',
      replace:
        `  // ${TAG} issuer and jwks_uri use the tokens' issuer domain, not always port 9229.\n` +
        '  app.get("/:userPoolId/.well-known/openid-configuration", (req, res) => {\n',
    },
  ],
};

const PATCH_ID = crypto.createHash("sha256").update(JSON.stringify(PATCHES)).digest("hex").slice(0, 12);
const HEADER = `${MARKER} ${PATCH_ID}: edited by testenv/patch-cognito-local.js to behave like real Cognito; pristine copy in ${"<file>" + ORIG_SUFFIX}\n`;

function occurrences(text, find) {
  return text.split(find).length - 1;
}

function main() {
  const check = process.argv.includes("--check");
  const pkgDir = process.env.COGNITO_LOCAL_DIR || path.join(__dirname, "node_modules", "cognito-local");
  const problems = [];
  const writes = [];
  let version = "?";
  try {
    version = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8")).version;
  } catch (err) {
    fail([`cognito-local is not installed at ${pkgDir} (${err.code || err.message})`]);
  }
  let upToDate = 0;
  for (const [rel, edits] of Object.entries(PATCHES)) {
    const file = path.join(pkgDir, rel);
    const orig = file + ORIG_SUFFIX;
    if (!fs.existsSync(file)) {
      problems.push(`${rel}: file not found`);
      continue;
    }
    const current = fs.readFileSync(file, "utf8");
    let pristine = current;
    if (current.startsWith(MARKER)) {
      if (current.startsWith(`${MARKER} ${PATCH_ID}:`)) {
        upToDate++;
        continue;
      }
      if (!fs.existsSync(orig)) {
        problems.push(`${rel}: patched by another version of this script and no pristine copy (${path.basename(orig)}); reinstall: rm -rf node_modules/cognito-local && npm ci`);
        continue;
      }
      pristine = fs.readFileSync(orig, "utf8");
    }
    let text = pristine;
    for (const e of edits) {
      const want = e.count ?? 1;
      const got = occurrences(text, e.find);
      if (got !== want) {
        problems.push(`${rel}: expected ${want} occurrence(s) of the text to patch (${e.why}), found ${got}:\n    ${JSON.stringify(e.find.slice(0, 160))}`);
        continue;
      }
      text = text.split(e.find).join(e.replace);
    }
    writes.push({ rel, file, orig, pristine, text: HEADER + text });
  }
  if (problems.length) {
    fail([`cognito-local ${version} at ${pkgDir} does not contain the text this patch expects (it was written for 5.3.0); nothing was written. Update testenv/patch-cognito-local.js for this version.`, ...problems]);
  }
  if (check) {
    if (writes.length) fail([`cognito-local at ${pkgDir} is not patched (or the patch is stale): ${writes.map((w) => w.rel).join(", ")}; run: node testenv/patch-cognito-local.js`]);
    console.log(`patch-cognito-local: cognito-local ${version} is patched (${PATCH_ID})`);
    return;
  }
  for (const w of writes) {
    // A syntax error must fail the install, not the first test.
    try {
      new vm.Script(`(function (exports, require, module, __filename, __dirname) {${w.text}\n})`, { filename: w.file });
    } catch (err) {
      problems.push(`${w.rel}: the patched file does not compile: ${err.message}`);
    }
  }
  if (problems.length) fail(problems);
  for (const w of writes) {
    fs.writeFileSync(w.orig, w.pristine);
    fs.writeFileSync(w.file, w.text);
  }
  console.log(`patch-cognito-local: cognito-local ${version}: patched ${writes.length} file(s), ${upToDate} already up to date (${PATCH_ID})`);
}

function fail(lines) {
  console.error("patch-cognito-local: FAILED\n  " + lines.join("\n  "));
  process.exit(1);
}

main();
