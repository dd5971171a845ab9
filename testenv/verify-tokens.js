#!/usr/bin/env node
// A second opinion on Cognito tokens, from AWS's own verifier (aws-jwt-verify).
//
// Reads one JSON document on stdin:
//   { "issuer": "http://localhost:9229/local_abc",   // the pool's issuer
//     "jwks": { "keys": [...] },                      // the pool's JWKS
//     "graceSeconds": 5,                              // clock leeway
//     "cases": [ { "name": "...", "token": "...", "tokenUse": "access"|"id",
//                  "clientId": ["..."], "groups": ["..."]?, "scope": ["..."]? } ] }
// and prints one JSON array: [{ "name", "valid", "error" }].
//
// CognitoJwtVerifier derives the issuer from an AWS user pool id
// (https://cognito-idp.<region>.amazonaws.com/<poolId>) and cannot be pointed
// at cognito-local's http://localhost issuer, so this uses JwtRsaVerifier for
// signature, issuer and time checks, and the very same Cognito field checks
// (validateCognitoJwtFields: token_use, client_id / aud, groups) that
// CognitoJwtVerifier runs. Its JWKS fetch is https-only, so the keys are
// loaded with cacheJwks().
"use strict";
const { JwtRsaVerifier } = require("aws-jwt-verify");
const { validateCognitoJwtFields } = require("aws-jwt-verify/cognito-verifier");

function readStdin() {
  return new Promise((resolve, reject) => {
    let data = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
    process.stdin.on("error", reject);
  });
}

async function main() {
  const input = JSON.parse(await readStdin());
  const results = [];
  for (const c of input.cases) {
    let verifier;
    try {
      verifier = JwtRsaVerifier.create({
        issuer: input.issuer,
        jwksUri: input.issuer + "/.well-known/jwks.json",
        audience: null, // Cognito's client checks below, as CognitoJwtVerifier does
        graceSeconds: input.graceSeconds ?? 0,
        scope: c.scope && c.scope.length ? c.scope : undefined,
        customJwtCheck: ({ payload }) =>
          validateCognitoJwtFields(payload, {
            tokenUse: c.tokenUse ?? null,
            clientId: c.clientId ?? null,
            groups: c.groups && c.groups.length ? c.groups : undefined,
          }),
      });
      verifier.cacheJwks(input.jwks);
    } catch (e) {
      console.error("cannot set up aws-jwt-verify:", e);
      process.exit(2);
    }
    try {
      await verifier.verify(c.token);
      results.push({ name: c.name, valid: true, error: "" });
    } catch (e) {
      results.push({ name: c.name, valid: false, error: `${e.name}: ${e.message}` });
    }
  }
  process.stdout.write(JSON.stringify(results, null, 1) + "\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
