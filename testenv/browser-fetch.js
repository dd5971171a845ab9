#!/usr/bin/env node
// Opens one URL in Debian's chromium (driven by playwright-core, which never
// downloads a browser) and prints what a person would see, as JSON:
//   { "status": 200, "text": "...", "headers": {...} }
//
// Input JSON on stdin: { "url": "...", "cookies": [{ "name", "value", "url" }],
//   "headers": { ... }, "screenshot": "/path.png"? }
"use strict";
const { chromium } = require("playwright-core");

const ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

async function main() {
  let data = "";
  for await (const chunk of process.stdin) data += chunk;
  const input = JSON.parse(data);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ARGS,
    headless: true,
  });
  try {
    const context = await browser.newContext({ extraHTTPHeaders: input.headers || {} });
    if (input.cookies && input.cookies.length) await context.addCookies(input.cookies);
    const page = await context.newPage();
    const resp = await page.goto(input.url, { waitUntil: "load", timeout: 20000 });
    const text = await page.evaluate(() => document.body ? document.body.innerText : "");
    if (input.screenshot) await page.screenshot({ path: input.screenshot, fullPage: true });
    process.stdout.write(JSON.stringify({ status: resp ? resp.status() : 0, text, headers: resp ? resp.headers() : {} }) + "\n");
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
