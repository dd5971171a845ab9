#!/usr/bin/env node
// Drives one multi-step scenario in Debian's chromium (through playwright-core,
// which never downloads a browser) and prints, as JSON, what a person saw at
// every step. It asserts nothing: the Go test that wrote the steps does.
//
// Input JSON on stdin:
//   { "cookies": [{ "name", "value", "url" }]?,   // put in the context first
//     "timeout_ms": 20000?,                       // per step
//     "steps": [ step, ... ] }
// A step does one thing (plus an optional screenshot and wait):
//   { "goto": "<url>" }                      navigate
//   { "fill": { "<css selector>": "value" } } type into fields
//   { "click": "<css selector or text=…>" }   click (e.g. a submit button)
//   { "wait_url": "<prefix>" }                with goto/click, or alone: wait until
//                                             the page's URL starts with the prefix
//   { "wait_for": "<css selector>" }          then wait until the element is on the page
//   { "screenshot": "/path.png" }             after the step, full page
//   { "name": "label" }                       echoed back
// Every step reports:
//   { "name", "url", "title", "status", "text", "html_forms",
//     "navigations": [{ "url", "status", "location" }],   main-frame responses
//                                                         during the step, redirects too
//     "cookies": [{ name, value, domain, path, httpOnly, secure, sameSite, expires }],
//     "error"? }
// The run stops at the first failing step (its report carries "error").
// Requests to hosts other than loopback are answered 204 without leaving the
// machine (oidc-provider's pages import a web font).
"use strict";
const { chromium } = require("playwright-core");

const ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

function isLoopback(u) {
  try {
    const h = new URL(u).hostname;
    return h === "localhost" || h === "127.0.0.1" || h === "[::1]" || h === "::1";
  } catch {
    return true; // data:, about: …
  }
}

async function main() {
  let data = "";
  for await (const chunk of process.stdin) data += chunk;
  const input = JSON.parse(data);
  const timeout = input.timeout_ms || 20000;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ARGS,
    headless: true,
  });
  const reports = [];
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: !!input.ignore_https_errors });
    await context.route("**/*", (route) => {
      if (isLoopback(route.request().url())) return route.continue();
      return route.fulfill({ status: 204, body: "" });
    });
    if (input.cookies && input.cookies.length) await context.addCookies(input.cookies);
    const page = await context.newPage();
    page.setDefaultTimeout(timeout);
    let navs = [];
    page.on("response", async (resp) => {
      const req = resp.request();
      if (!req.isNavigationRequest() || resp.frame() !== page.mainFrame()) return;
      navs.push({ url: resp.url(), status: resp.status(), location: resp.headers()["location"] || "" });
    });
    for (const step of input.steps) {
      navs = [];
      const report = { name: step.name || "" };
      reports.push(report);
      try {
        if (step.goto) {
          await page.goto(step.goto, { waitUntil: "load", timeout });
        }
        if (step.fill) {
          for (const [sel, value] of Object.entries(step.fill)) await page.fill(sel, value, { timeout });
        }
        if (step.click) {
          await page.click(step.click, { timeout });
        }
        if (step.wait_url) {
          const prefix = step.wait_url;
          await page.waitForURL((u) => u.href.startsWith(prefix), { timeout, waitUntil: "load" });
        } else if (step.click) {
          await page.waitForLoadState("load", { timeout });
        }
        if (step.wait_for) {
          await page.waitForSelector(step.wait_for, { timeout, state: "attached" });
          await page.waitForLoadState("load", { timeout });
        }
      } catch (e) {
        report.error = String(e && e.message ? e.message : e).split("\n").slice(0, 6).join("\n");
      }
      await describe(page, context, report, navs);
      if (step.screenshot) {
        try {
          await page.screenshot({ path: step.screenshot, fullPage: true });
        } catch (e) {
          report.error = (report.error ? report.error + "; " : "") + "screenshot: " + e.message;
        }
      }
      if (report.error) break;
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify({ steps: reports }) + "\n");
}

async function describe(page, context, report, navs) {
  report.url = page.url();
  report.navigations = navs.slice();
  const last = navs.length ? navs[navs.length - 1] : null;
  report.status = last ? last.status : 0;
  try {
    report.title = await page.title();
    report.text = await page.evaluate(() => (document.body ? document.body.innerText : ""));
    // The forms on the page: action, method and the names of their fields
    // (hidden ones with values), so a test can check what a button posts.
    report.html_forms = await page.evaluate(() => Array.from(document.forms).map((f) => ({
      action: f.action,
      method: (f.getAttribute("method") || "get").toLowerCase(),
      fields: Array.from(f.elements).filter((e) => e.name).map((e) => ({
        name: e.name, type: e.type || "", value: e.type === "hidden" ? e.value : "",
      })),
    })));
  } catch (e) {
    report.error = (report.error ? report.error + "; " : "") + "reading the page: " + e.message;
  }
  report.cookies = (await context.cookies()).map((c) => ({
    name: c.name, value: c.value, domain: c.domain, path: c.path,
    httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite, expires: c.expires,
  }));
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
