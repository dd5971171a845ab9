#!/usr/bin/env node
// Proves that testenv/patch-cognito-local.js makes cognito-local's hosted UI
// behave like real Cognito: starts a patched cognito-local on a free port (in a
// temporary working directory, so its .cognito/ state stays out of the repo),
// seeds a pool, app clients and a user, drives the login form with plain HTTP
// and checks nonce, single-use codes, client authentication, refresh, revoke
// and /logout. Prints PASS/FAIL lines; exits 1 on any failure.
//
// Usage: node testenv/check-cognito-local-patch.js
"use strict";
const { spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const START_JS = path.join(__dirname, "node_modules", "cognito-local", "lib", "bin", "start.js");
const CALLBACK = "http://localhost:8443/cognito/callback";
const LOGOUT = "http://localhost:8443/signed-out";
const EMAIL = "alice@example.com";
const PASSWORD = "Secret-Passw0rd!";

let failures = 0;
function check(name, ok, detail) {
  if (ok) console.log(`PASS ${name}`);
  else {
    failures++;
    let d = detail === undefined ? "" : typeof detail === "string" ? detail : JSON.stringify(detail);
    if (d.length > 400) d = d.slice(0, 400) + "…";
    console.log(`FAIL ${name}${d ? ": " + d : ""}`);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const claims = (jwt) => JSON.parse(Buffer.from(String(jwt).split(".")[1], "base64url").toString("utf8"));
const basic = (id, secret) => "Basic " + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64");
const unescapeHTML = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
  .replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

async function main() {
  try {
    execFileSync(process.execPath, [path.join(__dirname, "patch-cognito-local.js"), "--check"], { stdio: "inherit" });
  } catch {
    console.log("FAIL cognito-local is patched (run: node testenv/patch-cognito-local.js)");
    process.exit(1);
  }
  const port = await freePort();
  const base = `http://localhost:${port}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cognito-local-check-"));
  let output = "";
  const child = spawn(process.execPath, [START_JS], {
    cwd: dir,
    env: { ...process.env, PORT: String(port), HOST: "localhost" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    await run(base, port, () => output);
  } finally {
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(failures ? `\n${failures} check(s) FAILED` : "\nall checks passed");
  process.exit(failures ? 1 : 0);
}

async function run(base, port, output) {
  async function api(op, body) {
    const res = await fetch(base + "/", {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `AWSCognitoIdentityProviderService.${op}` },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${op}: HTTP ${res.status} ${text}`);
    return JSON.parse(text);
  }
  for (let i = 0; ; i++) {
    try {
      await api("ListUserPools", { MaxResults: 1 });
      break;
    } catch (err) {
      if (i > 150) throw new Error(`cognito-local not ready: ${err.message}\n${output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // Seed: a pool, a confidential client (the app), a second confidential
  // client in the same pool, a public client, and a user.
  const pool = (await api("CreateUserPool", { PoolName: "check" })).UserPool;
  const newClient = async (name, secret) => (await api("CreateUserPoolClient", {
    UserPoolId: pool.Id,
    ClientName: name,
    GenerateSecret: secret,
    CallbackURLs: [CALLBACK],
    LogoutURLs: [LOGOUT],
    AllowedOAuthFlows: ["code"],
    AllowedOAuthFlowsUserPoolClient: true,
    AllowedOAuthScopes: ["openid", "email", "profile"],
    ExplicitAuthFlows: ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
  })).UserPoolClient;
  const app = await newClient("app", true);
  const other = await newClient("other", true);
  const pub = await newClient("public", false);
  await api("AdminCreateUser", {
    UserPoolId: pool.Id, Username: EMAIL, MessageAction: "SUPPRESS",
    UserAttributes: [{ Name: "email", Value: EMAIL }, { Name: "email_verified", Value: "true" }],
  });
  await api("AdminSetUserPassword", { UserPoolId: pool.Id, Username: EMAIL, Password: PASSWORD, Permanent: true });
  const issuer = `${base}/${pool.Id}`;

  const disc = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  check(`discovery issuer follows PORT (${port})`, disc.issuer === issuer && disc.jwks_uri === `${issuer}/.well-known/jwks.json`, disc);

  // The hosted UI: GET renders the form, POST signs in and redirects.
  async function login(client, { nonce, state, password = PASSWORD } = {}) {
    const verifier = b64url(crypto.randomBytes(32));
    const q = new URLSearchParams({
      client_id: client.ClientId, redirect_uri: CALLBACK, response_type: "code", scope: "openid email profile",
      code_challenge: b64url(crypto.createHash("sha256").update(verifier).digest()), code_challenge_method: "S256",
    });
    if (state !== undefined) q.set("state", state);
    if (nonce !== undefined) q.set("nonce", nonce);
    const page = await fetch(`${base}/oauth2/authorize?${q}`, { redirect: "manual" });
    const html = await page.text();
    const action = /<form[^>]*action="([^"]*)"/.exec(html)?.[1];
    const method = /<form[^>]*method="([^"]*)"/.exec(html)?.[1];
    const form = new URLSearchParams();
    const hidden = {};
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)" \/>/g)) {
      hidden[m[1]] = unescapeHTML(m[2]);
      form.set(m[1], hidden[m[1]]);
    }
    const visible = [...html.matchAll(/<input type="(text|password)" name="([^"]+)"/g)].map((m) => m[2]);
    form.set("username", EMAIL);
    form.set("password", password);
    const post = await fetch(new URL(action ?? "/oauth2/authorize", base), {
      method: "POST", redirect: "manual", body: form,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    const postHTML = post.status === 200 ? await post.text() : "";
    const location = post.headers.get("location");
    const cb = location ? new URL(location) : null;
    return {
      verifier, page, html, action, method, hidden, visible, post, postHTML, location,
      code: cb?.searchParams.get("code"), state: cb?.searchParams.get("state"),
      cookies: [page.headers.get("set-cookie"), post.headers.get("set-cookie")].filter(Boolean),
    };
  }
  async function token(params, auth) {
    const headers = { "Content-Type": "application/x-www-form-urlencoded" };
    if (auth) headers.Authorization = auth;
    const res = await fetch(`${base}/oauth2/token`, { method: "POST", headers, body: new URLSearchParams(params) });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch {}
    return { status: res.status, json, text };
  }
  async function revoke(params, auth) {
    const headers = { "Content-Type": "application/x-www-form-urlencoded" };
    if (auth) headers.Authorization = auth;
    const res = await fetch(`${base}/oauth2/revoke`, { method: "POST", headers, body: new URLSearchParams(params) });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch {}
    return { status: res.status, json, text };
  }
  const appAuth = basic(app.ClientId, app.ClientSecret);
  const isErr = (r, code) => r.status === 400 && r.json?.error === code;

  // 1. nonce through the form, the code and the ID token.
  const nonce = b64url(crypto.randomBytes(32));
  const state = `st-${b64url(crypto.randomBytes(8))} "<quoted> & odd'`;
  const bad = await login(app, { nonce, state, password: "wrong" });
  check("GET /oauth2/authorize renders the login form (200 HTML)", bad.page.status === 200 && bad.method === "POST" && bad.action === "/oauth2/authorize",
    { status: bad.page.status, method: bad.method, action: bad.action });
  check("login form carries the nonce as a hidden field", bad.hidden.nonce === nonce, bad.hidden);
  check("login form round-trips a state with quotes and <>& (HTML-escaped)", bad.hidden.state === state, bad.hidden.state);
  check("wrong password re-renders the form (200) with the nonce kept", bad.post.status === 200 && /Incorrect username or password/.test(bad.postHTML) &&
    bad.postHTML.includes(`name="nonce" value="${nonce}"`), { status: bad.post.status });
  const l1 = await login(app, { nonce, state });
  check("POST /oauth2/authorize redirects (302) to the callback with code and state", l1.post.status === 302 &&
    l1.location.startsWith(CALLBACK + "?") && !!l1.code && l1.state === state, { status: l1.post.status, location: l1.location });
  check("hosted UI sets no session cookie (cognito-local keeps no hosted-UI session)", l1.cookies.length === 0, l1.cookies);

  const exch = (l, extra = {}) => ({ grant_type: "authorization_code", code: l.code, redirect_uri: CALLBACK, code_verifier: l.verifier, ...extra });
  let r = await token(exch(l1, { client_id: app.ClientId }), basic(app.ClientId, "wrong-secret"));
  check("code exchange with a wrong client secret is 400 invalid_client", isErr(r, "invalid_client"), r);
  r = await token(exch(l1, { client_id: app.ClientId }));
  check("code exchange without the secret of a confidential client is 400 invalid_client", isErr(r, "invalid_client"), r);
  r = await token(exch(l1, { client_id: app.ClientId }), basic(other.ClientId, other.ClientSecret));
  check("client_id in the body differing from the Basic header is 400 invalid_client", isErr(r, "invalid_client"), r);
  const t1 = await token(exch(l1, { client_id: app.ClientId }), appAuth);
  const id1 = t1.json?.id_token ? claims(t1.json.id_token) : {};
  check("code exchange (client_secret_basic) returns access, ID and refresh tokens", t1.status === 200 &&
    !!t1.json.access_token && !!t1.json.id_token && !!t1.json.refresh_token && t1.json.token_type === "Bearer", t1);
  check("ID token nonce equals the nonce sent to /oauth2/authorize", id1.nonce === nonce, id1);
  check(`ID token iss/aud are http://localhost:${port}/<pool> and the client`, id1.iss === issuer && id1.aud === app.ClientId, { iss: id1.iss, aud: id1.aud });
  check("access token has no nonce claim", t1.json?.access_token && !("nonce" in claims(t1.json.access_token)));
  r = await token(exch(l1, { client_id: app.ClientId }), appAuth);
  check("second exchange of the same code is 400 invalid_grant (single use)", isErr(r, "invalid_grant"), r);
  r = await token(exch({ code: "not-a-code", verifier: l1.verifier }, { client_id: app.ClientId }), appAuth);
  check("unknown code is 400 invalid_grant", isErr(r, "invalid_grant"), r);

  // 2. Without a nonce, no nonce claim; client_secret_post; client_id only in the Basic header.
  const l2 = await login(app, { state: "s2" });
  check("authorize without nonce: the form's nonce field is empty", l2.hidden.nonce === "" && !!l2.code, l2.hidden);
  const t2 = await token(exch(l2, { client_id: app.ClientId, client_secret: app.ClientSecret }));
  check("code exchange with client_secret_post works", t2.status === 200 && !!t2.json.refresh_token, t2);
  check("ID token has no nonce claim when none was sent", t2.json?.id_token && !("nonce" in claims(t2.json.id_token)), t2.json && claims(t2.json.id_token));
  const l3 = await login(app, { nonce: "n3" });
  const t3 = await token(exch(l3), appAuth);
  check("code exchange with client_id only in the Basic header works", t3.status === 200 && claims(t3.json.id_token).nonce === "n3", t3);
  const l4 = await login(pub, { nonce: "n4" });
  const t4 = await token(exch(l4, { client_id: pub.ClientId }));
  check("public client (no secret) exchanges with client_id in the body", t4.status === 200 && claims(t4.json.id_token).nonce === "n4", t4);

  // 3. Refresh: new access and ID token, no refresh_token, bound to the client.
  const rt = t1.json.refresh_token;
  const ref = await token({ grant_type: "refresh_token", refresh_token: rt, client_id: app.ClientId }, appAuth);
  check("refresh_token grant returns a new access and ID token and no refresh_token", ref.status === 200 &&
    !!ref.json.access_token && !!ref.json.id_token && !("refresh_token" in ref.json), ref);
  check("refreshed ID token has no nonce claim", ref.json?.id_token && !("nonce" in claims(ref.json.id_token)));
  r = await token({ grant_type: "refresh_token", refresh_token: rt, client_id: app.ClientId }, basic(app.ClientId, "wrong-secret"));
  check("refresh with a wrong client secret is 400 invalid_client", isErr(r, "invalid_client"), r);
  r = await token({ grant_type: "refresh_token", refresh_token: rt, client_id: other.ClientId }, basic(other.ClientId, other.ClientSecret));
  check("another client's refresh token is 400 invalid_grant", isErr(r, "invalid_grant"), r);

  // 4. Revoke.
  r = await revoke({ client_id: app.ClientId }, appAuth);
  check("revoke without token is 400 invalid_request", isErr(r, "invalid_request"), r);
  r = await revoke({ token: rt, client_id: app.ClientId }, basic(app.ClientId, "wrong-secret"));
  check("revoke with a wrong client secret is 400 invalid_client", isErr(r, "invalid_client"), r);
  r = await revoke({ token: rt, client_id: app.ClientId });
  check("revoke without the secret of a confidential client is 400 invalid_client", isErr(r, "invalid_client"), r);
  r = await revoke({ token: rt, client_id: other.ClientId }, basic(other.ClientId, other.ClientSecret));
  check("revoke of another client's token is 400 unauthorized_client", isErr(r, "unauthorized_client"), r);
  r = await revoke({ token: t1.json.access_token, client_id: app.ClientId }, appAuth);
  check("revoke of an access token is 400 unsupported_token_type", isErr(r, "unsupported_token_type"), r);
  r = await token({ grant_type: "refresh_token", refresh_token: rt, client_id: app.ClientId }, appAuth);
  check("refresh still works after the refused revocations", r.status === 200, r);
  r = await revoke({ token: rt, client_id: app.ClientId }, appAuth);
  check("revoke (client_secret_basic) is 200 with an empty body", r.status === 200 && r.text === "", r);
  r = await token({ grant_type: "refresh_token", refresh_token: rt, client_id: app.ClientId }, appAuth);
  check("refresh with the revoked token is 400 invalid_grant", isErr(r, "invalid_grant"), r);
  r = await revoke({ token: rt, client_id: app.ClientId }, appAuth);
  check("revoking it again is 200 (RFC 7009)", r.status === 200 && r.text === "", r);
  r = await token({ grant_type: "refresh_token", refresh_token: t2.json.refresh_token, client_id: app.ClientId }, appAuth);
  check("the user's other refresh token still works", r.status === 200, r);
  r = await revoke({ token: t4.json.refresh_token, client_id: pub.ClientId });
  const r2 = await token({ grant_type: "refresh_token", refresh_token: t4.json.refresh_token, client_id: pub.ClientId });
  check("public client revokes with client_id in the body", r.status === 200 && isErr(r2, "invalid_grant"), { revoke: r, refresh: r2 });

  // 5. Logout.
  const logout = (q) => fetch(`${base}/logout?${new URLSearchParams(q)}`, { redirect: "manual" });
  let res = await logout({ client_id: app.ClientId, logout_uri: LOGOUT });
  check("/logout with a registered logout_uri redirects (302) to it", res.status === 302 && res.headers.get("location") === LOGOUT,
    { status: res.status, location: res.headers.get("location") });
  res = await logout({ client_id: app.ClientId, logout_uri: "http://evil.example/" });
  check("/logout with an unregistered logout_uri is a 400 error page", res.status === 400 && !res.headers.get("location"), { status: res.status });
  res = await logout({ client_id: app.ClientId, logout_uri: LOGOUT + "/" });
  check("/logout logout_uri must match exactly", res.status === 400, { status: res.status });
  res = await logout({ client_id: app.ClientId, logout_uri: CALLBACK });
  check("/logout does not accept a callback URL as logout_uri", res.status === 400, { status: res.status });
  res = await logout({ client_id: "nosuchclient", logout_uri: LOGOUT });
  check("/logout with an unknown client is 400", res.status === 400, { status: res.status });
  res = await logout({ client_id: app.ClientId });
  check("/logout without logout_uri is 400", res.status === 400, { status: res.status });

  console.log(`\nhosted UI: GET /oauth2/authorize -> form method=${l1.method} action=${l1.action}; hidden fields: ${Object.keys(l1.hidden).join(", ")}; visible fields: ${l1.visible.join(", ")}; cookies set: ${l1.cookies.length}`);
}

main().catch((err) => {
  console.log(`FAIL ${err.stack || err}`);
  process.exit(1);
});
