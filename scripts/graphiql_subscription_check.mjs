// Browser check: in walletql's self-hosted GraphiQL, a transaction's statuses
// show up in the result pane of a subscription (QUEUED -> ... -> CONFIRMED).
//
// Drives the system Chromium headless through playwright-core, with DNS blocked
// for every host except 127.0.0.1, against a running `walletql serve`. GraphiQL
// is opened at /graphql?token=TOKEN: the page puts "Authorization: Bearer TOKEN"
// into the Headers editor, which GraphiQL sends on POSTs and (lowercased) as the
// websocket's connection_init payload. Query text is entered through the
// keyboard (click into the query editor, Ctrl+A, type) and run with the run
// button; results are read from the rendered result pane.
//
// Part 1, "by id" (transactionStatus):
//   a) run  mutation { submitTransaction(input: {to: "0x…dEaD", value: "1000",
//           password: "correct horse battery"}) { id status } }
//      and read the transaction id from the result pane;
//   b) replace the query with
//           subscription { transactionStatus(id: "<ID>", afterSeq: 0) { seq status } }
//      and run it;
//   c) poll the result pane every ~50 ms until it shows CONFIRMED, collecting
//      the distinct statuses it showed;
//   d) screenshot to SCREENSHOT.
//   Typing the subscription takes a few seconds, and the embedded chain takes
//   ~0.2 s from QUEUED to CONFIRMED, so this subscription replays a finished
//   transaction: all events arrive in one burst and GraphiQL normally renders
//   only the last one (CONFIRMED).
//
// Part 2, "live" (myTransactions): tab A runs
//           subscription { myTransactions { seq transactionId status } }
//   (no afterSeq: only new events), then tab B (a second GraphiQL page) runs the
//   same submitTransaction mutation; tab A's result pane is polled every ~50 ms
//   (and, as a cross-check, a MutationObserver inside the page records every
//   status the pane's DOM took) until it shows CONFIRMED for that transaction.
//   Screenshot of tab A to SCREENSHOT with "-live" before the extension.
//
// Prerequisites (playwright-core lives outside the repo; it downloads nothing
// here because the system Chromium is used):
//   mkdir -p /tmp/pw && (cd /tmp/pw && npm init -y && npm install playwright-core)
//   cd /work/main
//   WALLETQL_DATA_DIR=/work/main/.data/giql-check WALLETQL_PORT=8123 .venv/bin/walletql serve &
//   TOKEN=$(WALLETQL_DATA_DIR=/work/main/.data/giql-check .venv/bin/walletql token alice)
//   curl -s http://127.0.0.1:8123/graphql -H 'content-type: application/json' \
//     -H "authorization: Bearer $TOKEN" \
//     -d '{"query":"mutation { createUser(input: {password: \"correct horse battery\"}) { id } }"}'
//   (each run spends 2000 wei of alice's faucet-funded 10 ETH)
//
// Run (from the repo root):
//   NODE_PATH=/tmp/pw/node_modules node scripts/graphiql_subscription_check.mjs \
//     8123 "$TOKEN" /tmp/giql-subscription.png
//
// or: cd /tmp/pw && node /work/main/scripts/graphiql_subscription_check.mjs 8123 "$TOKEN" OUT.png
// Node does not consult NODE_PATH for ESM `import`, so playwright-core is loaded
// through createRequire, which does (and also finds ./node_modules of the cwd).
// Env CHROMIUM overrides /usr/bin/chromium. The screenshots show the start of
// the token in the Headers editor.
//
// Output: stdout has the statuses each part saw, in order, and the final result
// panes (the +ms of the polling and of the MutationObserver use different clocks
// and starting points: compare within a list, not across); stderr has details
// (websocket frames with the token redacted, HTTP errors, console errors, any
// request to a host other than 127.0.0.1).
// Exit codes: 0 = part 1 ended on CONFIRMED, and part 2 saw CONFIRMED plus at
//                 least one earlier status;
//             1 = otherwise (reason on stderr); 2 = bad usage.

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "noop.js"));
const { chromium } = require("playwright-core");

const [port, token, screenshot] = process.argv.slice(2);
if (!port || !token || !screenshot) {
  console.error("usage: node graphiql_subscription_check.mjs PORT TOKEN SCREENSHOT.png");
  process.exit(2);
}
const parsed = path.parse(screenshot);
const liveScreenshot = path.join(parsed.dir, `${parsed.name}-live${parsed.ext || ".png"}`);

const BASE = `http://127.0.0.1:${port}`;
const FINAL = new Set(["CONFIRMED", "FAILED", "EXPIRED", "CANCELLED"]);
const MUTATION =
  'mutation { submitTransaction(input: {to: "0x000000000000000000000000000000000000dEaD", ' +
  'value: "1000", password: "correct horse battery"}) { id status } }';
const BY_ID = (id) => `subscription { transactionStatus(id: "${id}", afterSeq: 0) { seq status } }`;
const LIVE = "subscription { myTransactions { seq transactionId status } }";

const QUERY_EDITOR = ".graphiql-query-editor .CodeMirror";
const RESULT = ".result-window";
const RUN_BUTTON = ".graphiql-execute-button";

const log = (...args) => console.error("[check]", ...args);
const redact = (s) => String(s).split(token).join("<TOKEN>");
// Compare queries ignoring layout (enough for the fixed texts used here).
const normalized = (s) => s.replace(/\s+/g, " ").replace(/ ?([(){}[\]:,]) ?/g, "$1").trim();

async function resultText(page) {
  return page.$eval(RESULT, (el) => el.innerText).catch(() => "");
}

// The query editor's content as CodeMirror holds it (read only, to verify typing).
async function editorValue(page) {
  return page.$eval(QUERY_EDITOR, (el) => (el.CodeMirror ? el.CodeMirror.getValue() : el.innerText));
}

// Replace the query editor's content through the keyboard: click, Ctrl+A, type.
// GraphiQL's editor auto-closes brackets and quotes, but typing the closing
// character over an auto-inserted one overwrites it, so the text comes out as
// typed; if it does not, fall back to insertText (one input event, like a paste).
async function setQuery(page, text) {
  await page.click(QUERY_EDITOR);
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.type(text, { delay: 5 });
  await page.keyboard.press("Escape"); // close any autocomplete popup
  // GraphiQL derives the operation name from the editor in a 100 ms debounced
  // change handler; running sooner sends the previous query's operationName
  // ("Me", from the default query) and the server answers 400.
  await page.waitForTimeout(400);
  let value = await editorValue(page);
  if (normalized(value) === normalized(text)) return prettify(page, text, "typed");
  log("typed text came out as", JSON.stringify(value), "- retrying with insertText");
  await page.click(QUERY_EDITOR);
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText(text);
  await page.waitForTimeout(400);
  value = await editorValue(page);
  if (normalized(value) !== normalized(text)) {
    throw new Error(`could not set the query editor; it holds ${JSON.stringify(value)}`);
  }
  return prettify(page, text, "insertText");
}

// Click GraphiQL's prettify button so the whole operation is visible in the
// screenshot (one long line would be scrolled to its end). Whitespace only.
async function prettify(page, text, how) {
  await page.click('button[aria-label^="Prettify query"]');
  await page.waitForTimeout(400); // the same 100 ms debounce as above
  const value = await editorValue(page);
  if (normalized(value) !== normalized(text)) {
    throw new Error(`prettify changed the query to ${JSON.stringify(value)}`);
  }
  return `${how}, prettified`;
}

async function waitForResult(page, predicate, timeout) {
  const end = Date.now() + timeout;
  let text = "";
  while (Date.now() < end) {
    text = await resultText(page);
    if (predicate(text)) return text;
    await page.waitForTimeout(50);
  }
  throw new Error(`timed out; result pane shows ${JSON.stringify(redact(text))}`);
}

async function openGraphiql(browser, label, external) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const frames = [];
  page.on("request", (req) => {
    const u = new URL(req.url());
    if (u.hostname !== "127.0.0.1" && !["data:", "blob:"].includes(u.protocol)) {
      external.push(`${label}: ${req.url()}`);
    }
  });
  page.on("response", (res) => {
    if (res.status() >= 400) {
      log(`${label}: HTTP ${res.status()} for ${res.request().method()} ${redact(res.url())}`);
    }
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") log(`${label}: console.error:`, redact(msg.text()));
  });
  page.on("pageerror", (err) => log(`${label}: pageerror:`, redact(err.message)));
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => frames.push(["sent", redact(f.payload)]));
    ws.on("framereceived", (f) => frames.push(["recv", redact(f.payload)]));
  });
  await page.goto(`${BASE}/graphql?token=${encodeURIComponent(token)}`);
  await page.waitForSelector(QUERY_EDITOR, { timeout: 15000 });
  await page.waitForSelector(RUN_BUTTON);
  return { page, frames };
}

async function submitTransaction(page, label) {
  const how = await setQuery(page, MUTATION);
  log(`${label}: mutation entered (${how}); running it`);
  await page.click(RUN_BUTTON);
  const text = await waitForResult(page, (t) => /"id"|"errors"/.test(t), 15000);
  log(`${label}: mutation result pane:\n${redact(text)}`);
  const m = text.match(/"id":\s*"([^"]+)"/);
  if (!m) throw new Error(`${label}: no transaction id in the result pane`);
  return m[1];
}

// Record, inside the page, every status the result pane's DOM shows (cross-check
// for the 50 ms polling; catches panes that were replaced between two polls).
async function installRecorder(page, field) {
  await page.evaluate(
    ({ selector, field }) => {
      const seen = (window.__statusLog = []);
      const pane = document.querySelector(selector);
      window.__statusT0 = performance.now();
      const record = () => {
        const text = pane.innerText;
        if (!text.includes(`"${field}"`)) return;
        const status = (text.match(/"status":\s*"([A-Z_]+)"/) || [])[1];
        const tx = (text.match(/"transactionId":\s*"([^"]+)"/) || [])[1] || null;
        const last = seen[seen.length - 1];
        if (status && !(last && last.status === status && last.tx === tx)) {
          seen.push({ status, tx, ms: Math.round(performance.now() - window.__statusT0) });
        }
      };
      new MutationObserver(record).observe(pane, {
        subtree: true, childList: true, characterData: true,
      });
    },
    { selector: RESULT, field },
  );
}

// Poll the result pane every ~50 ms; collect the distinct statuses it shows for
// `field` (and, if given, only for transaction `txId`) until a final status.
async function pollStatuses(page, field, txId, timeout = 30000) {
  const seen = [];
  const t0 = Date.now();
  let lastText = null;
  while (Date.now() - t0 < timeout) {
    const text = await resultText(page);
    if (text !== lastText) {
      lastText = text;
      if (/"errors"/.test(text)) log(`result pane shows errors:\n${redact(text)}`);
      const status = (text.match(/"status":\s*"([A-Z_]+)"/) || [])[1];
      const tx = (text.match(/"transactionId":\s*"([^"]+)"/) || [])[1];
      const mine = text.includes(`"${field}"`) && (!txId || tx === txId);
      if (mine && status && seen.at(-1)?.status !== status) {
        seen.push({ status, ms: Date.now() - t0 });
        if (FINAL.has(status)) return { seen, text };
      }
    }
    await page.waitForTimeout(50);
  }
  return { seen, text: lastText };
}

const fmt = (seen) => seen.map((s) => `${s.status} (+${s.ms} ms)`).join(" -> ") || "(none)";

function dumpFrames(label, frames) {
  log(`${label}: websocket frames (${frames.length}):`);
  for (const [dir, payload] of frames) log(`  ${dir} ${payload}`);
}

async function partById(browser, external) {
  console.log("== part 1: transactionStatus(id, afterSeq: 0) after the mutation ==");
  const { page, frames } = await openGraphiql(browser, "by-id", external);
  const txId = await submitTransaction(page, "by-id");
  console.log(`transaction id: ${txId}`);
  const how = await setQuery(page, BY_ID(txId));
  log(`by-id: subscription entered (${how}); running it`);
  await installRecorder(page, "transactionStatus");
  const framesBefore = frames.length;
  await page.click(RUN_BUTTON);
  const { seen, text } = await pollStatuses(page, "transactionStatus", null);
  const rendered = await page.evaluate(() => window.__statusLog);
  await page.screenshot({ path: screenshot });
  dumpFrames("by-id", frames.slice(framesBefore));
  console.log(`statuses seen in the result pane (50 ms polling): ${fmt(seen)}`);
  console.log(`statuses the result pane's DOM took (MutationObserver): ${fmt(rendered)}`);
  console.log(`final result pane:\n${text}`);
  console.log(`screenshot: ${screenshot}`);
  await page.context().close();
  return seen;
}

async function partLive(browser, external) {
  console.log("== part 2: myTransactions subscribed before the mutation ==");
  const a = await openGraphiql(browser, "live-A", external);
  const how = await setQuery(a.page, LIVE);
  log(`live-A: subscription entered (${how}); running it`);
  await installRecorder(a.page, "myTransactions");
  await a.page.click(RUN_BUTTON);
  // wait until the subscribe message is on the wire (after connection_ack)
  const end = Date.now() + 10000;
  while (!a.frames.some(([d, p]) => d === "sent" && p.includes('"subscribe"'))) {
    if (Date.now() > end) throw new Error("live-A: the subscription was never sent");
    await a.page.waitForTimeout(50);
  }
  await a.page.waitForTimeout(1000); // let the server attach the subscriber

  const b = await openGraphiql(browser, "live-B", external);
  const t0 = Date.now();
  await a.page.evaluate(() => { window.__statusT0 = performance.now(); }); // time from here on
  const pollA = pollStatuses(a.page, "myTransactions", null); // start before the id is known
  const txId = await submitTransaction(b.page, "live-B");
  log(`live-B: mutation answered after ${Date.now() - t0} ms`);
  console.log(`transaction id: ${txId}`);
  // no txId filter: the user has no other activity, and the id is not known yet
  const { seen, text } = await pollA;
  const rendered = await a.page.evaluate(() => window.__statusLog);
  await a.page.screenshot({ path: liveScreenshot });
  dumpFrames("live-A", a.frames);
  const other = rendered.filter((r) => r.tx && r.tx !== txId);
  if (other.length) log("live-A: panes about other transactions:", JSON.stringify(other));
  const mine = rendered.filter((r) => r.tx === txId);
  console.log(`statuses seen in tab A's result pane (50 ms polling): ${fmt(seen)}`);
  console.log(`statuses tab A's result pane DOM took (MutationObserver): ${fmt(mine)}`);
  console.log(`final result pane:\n${text}`);
  console.log(`screenshot: ${liveScreenshot}`);
  await a.page.click(RUN_BUTTON); // stop the subscription
  await a.page.context().close();
  await b.page.context().close();
  return { seen, txId, finalTx: (text.match(/"transactionId":\s*"([^"]+)"/) || [])[1] };
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ],
  });
  const external = [];
  try {
    const byId = await partById(browser, external);
    const live = await partLive(browser, external);
    if (external.length) log("requests to hosts other than 127.0.0.1:", external);

    const problems = [];
    if (byId.at(-1)?.status !== "CONFIRMED") problems.push("part 1 did not end on CONFIRMED");
    const s = live.seen.map((x) => x.status);
    if (s.at(-1) !== "CONFIRMED") problems.push("part 2 did not end on CONFIRMED");
    else if (s.length < 2) problems.push("part 2 showed CONFIRMED but no earlier status");
    if (live.finalTx !== live.txId) problems.push("part 2's last pane is about another transaction");
    console.log("== summary ==");
    console.log(`part 1 (by id, afterSeq: 0): ${byId.map((x) => x.status).join(" -> ") || "(none)"}`);
    console.log(`part 2 (live):               ${s.join(" -> ") || "(none)"}`);
    if (problems.length) {
      for (const p of problems) console.error(`FAIL: ${p}`);
      return 1;
    }
    console.log("OK");
    return 0;
  } finally {
    await browser.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error("FAIL:", redact(err && err.stack ? err.stack : err));
    process.exit(1);
  },
);
