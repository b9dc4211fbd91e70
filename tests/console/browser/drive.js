// drive.js - Debian's chromium (playwright-core, executablePath) through
// the sluice web console of a real test fleet; run by test_browser.py,
// which starts the fleet and checks the spool and the record afterwards.
// Env: CONSOLE_URL, CHROMIUM, SHOTS (directory), OP_NAME, OP_PASS,
// VIEWER_NAME, VIEWER_PASS, QID (a deferred message), NODE (its node).
// Prints one JSON line of findings; exits 1 with the reason on failure.
"use strict";
const path = require("path");
const { chromium } = require("playwright-core");

const env = (k) => {
  if (!process.env[k]) throw new Error("missing env " + k);
  return process.env[k];
};
const URL = env("CONSOLE_URL");
const SHOTS = env("SHOTS");
const QID = env("QID");
const NODE = env("NODE");
const T = 20000;
const found = {};

// Playwright's function waits evaluate strings, which the console's CSP
// (script-src 'self') forbids: poll with page.evaluate instead.
async function waitFor(page, fn, arg, what) {
  const end = Date.now() + T;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
}

async function login(page, name, pass) {
  await page.goto(URL + "/");
  await page.waitForSelector("#login-form", { state: "visible", timeout: T });
  await page.fill("#login-name", name);
  await page.fill("#login-password", pass);
  await page.click("#login-submit");
  await page.waitForSelector("#top", { state: "visible", timeout: T });
}

async function show(page, hash, ready) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForSelector(ready, { timeout: T });
}

// The message's row in the queue list, once it shows state.
async function rowState(page, state) {
  const row = `#messages tr[data-qid="${QID}"]`;
  await waitFor(page, ([sel, st]) => {
    const r = document.querySelector(sel);
    return r && r.querySelector("td:nth-child(3)").textContent === st;
  }, [row, state], QID + " " + state);
  return row;
}

async function act(page, which, expect) {
  const row = `#messages tr[data-qid="${QID}"]`;
  await page.click(`${row} .act-${which}`);
  await page.waitForSelector("#confirm[open]", { timeout: T });
  found["confirm_" + which] = await page.textContent("#confirm-text");
  if (which === "hold") await shot(page, "queues-confirm");
  await page.click("#confirm-ok");
  // The page asks the node, waits for its answer, then lists again.
  await waitFor(page, ([sel, st]) => {
    const r = document.querySelector(sel);
    return r && r.querySelector("td:nth-child(3)").textContent === st;
  }, [row, expect], QID + " " + expect);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: env("CHROMIUM"),
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Console errors but the HTTP statuses this test provokes (401 before
// login, the viewer's 403): a CSP violation or a script error fails.
page.on("console", (m) => {
    if (m.type() === "error" && !/status of 40[13]/.test(m.text())) errors.push(m.text());
  });

  // -- operator
  await page.goto(URL + "/");
  await page.waitForSelector("#login-form", { state: "visible", timeout: T });
  await shot(page, "login");
  await login(page, env("OP_NAME"), env("OP_PASS"));
  await waitFor(page, (n) => {
    const r = document.querySelector(`#nodes tr[data-node="${n}"]`);
    return r && r.textContent.includes("up");
  }, NODE, "node up on the fleet page");
  found.fleet_nodes = await page.$$eval("#nodes tbody tr", (rs) => rs.map((r) =>
    [...r.querySelectorAll("td")].map((c) => c.textContent)));
  found.fleet_cards = await page.$$eval(".card", (cs) => cs.map((c) => c.textContent));
  await shot(page, "fleet");

  await show(page, "#hops", "#page[data-page=hops] h1");
  await page.waitForSelector("#hop-nodes-up", { timeout: T });
  found.hops = await page.$$eval("#page h2", (hs) => hs.map((x) => x.textContent));
  await shot(page, "hops");

  await show(page, "#queues", "#qshape");
  let row = await rowState(page, "deferred");
  found.last_reply = await page.textContent(`${row} td.last-reply`);
  found.qshape = await page.$$eval("#qshape tbody tr", (rs) => rs.map((r) => r.textContent));
  await shot(page, "queues");
  await act(page, "hold", "held");
  found.held_in_ui = true;
  await shot(page, "queues-held");
  await act(page, "release", "deferred");
  found.released_in_ui = true;

  await show(page, "#trace", "#trace-form");
  await page.fill("#trace-id", QID);
  await page.click("#trace-submit");
  await waitFor(page, () => {
    const kinds = [...document.querySelectorAll("#trace tbody tr")].map((r) => r.dataset.kind);
    return kinds.includes("held") && kinds.includes("released");
  }, null, "held and released in the trace");
  found.trace_kinds = await page.$$eval("#trace tbody tr", (rs) => rs.map((r) => r.dataset.kind));
  await page.fill("#log-sender", "app@");
  await page.click("#log-submit");
  await page.waitForSelector("#log tbody tr[data-kind]", { timeout: T });
  found.log_rows = await page.$$eval("#log tbody tr[data-kind]", (rs) => rs.length);
  await shot(page, "trace");

  await show(page, "#policy", "#history");
  await page.waitForSelector("#policy-diff tbody tr.diff-add", { timeout: T });
  found.diff_rows = await page.$$eval("#policy-diff tbody tr", (rs) => rs.map((r) => r.textContent));
  await shot(page, "policy");

  await show(page, "#alerts", "#alerts-open");
  await shot(page, "alerts");

  await page.setViewportSize({ width: 390, height: 844 });
  await show(page, "#fleet", "#nodes");
  found.phone_scroll_width = await page.evaluate(() => document.documentElement.scrollWidth);
  await shot(page, "fleet-phone");
  await show(page, "#queues", `#messages tr[data-qid="${QID}"]`);
  await shot(page, "queues-phone");
  await page.setViewportSize({ width: 1280, height: 800 });

  await page.click("#logout");
  await page.waitForSelector("#login-form", { state: "visible", timeout: T });

  // -- viewer: sees the queue, has no buttons, and the API refuses
  await login(page, env("VIEWER_NAME"), env("VIEWER_PASS"));
  await show(page, "#queues", "#qshape");
  await rowState(page, "deferred");
  found.viewer_buttons = await page.$$eval("#messages button", (bs) => bs.length);
  found.viewer_actions_column = await page.$$eval("#messages th", (ths) =>
    ths.some((t) => t.textContent === "actions"));
  await shot(page, "queues-viewer");
  found.viewer_api = await page.evaluate(async ([qid, node]) => {
    const me = await (await fetch("/api/me")).json();
    const r = await fetch("/api/queue/action", { method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRF-Token": me.csrf },
      body: new URLSearchParams({ action: "hold", queue_id: qid, node }).toString() });
    return { status: r.status, body: await r.json(), role: me.role };
  }, [QID, NODE]);
  found.page_errors = errors;
  await browser.close();
  process.stdout.write(JSON.stringify(found) + "\n");
})().catch((e) => {
  process.stderr.write("drive.js: " + (e && e.stack || e) + "\n");
  process.stdout.write(JSON.stringify(found) + "\n");
  process.exit(1);
});
