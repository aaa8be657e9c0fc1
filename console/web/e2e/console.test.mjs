// The console in a real browser: "minipay serve" (the real binary, a fresh
// database), headless Debian Chromium through playwright-core. An app's
// developer finds a failed webhook delivery, redelivers it and sees it
// land, and refunds a payment from its page; the platform's admin creates
// a developer and an app, runs settlement, sees the chart and downloads
// the report, whose totals must equal the API's; then the app answers a
// dispute the host opened, and the admin rules on it; last the app makes a
// plan, opens a subscription and its invoice, and cancels it.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { startServe } from "./harness.mjs";

const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
// Screenshots go to a temporary directory unless asked for (make
// screenshots writes docs/img).
const shots = resolve(process.env.MINIPAY_SCREENSHOTS || mkdtempSync(join(tmpdir(), "minipay-console-shots-")));

let srv, browser, ctx, receiver;
let receiverStatus = 500;
let received = 0;
const app = {};

before(async () => {
  assert.ok(existsSync(chromiumPath), `no Chromium at ${chromiumPath}: apt-get install -y chromium`);
  mkdirSync(shots, { recursive: true });
  receiver = createServer((req, res) => {
    req.resume();
    received++;
    res.writeHead(receiverStatus, { "content-type": "application/json" }).end(receiverStatus === 200 ? '{"ok":true}' : '{"error":"database is down"}');
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  srv = await startServe({ MINIPAY_WEBHOOK_RETRY_SCHEDULE: "1h", MINIPAY_WEBHOOK_TIMEOUT: "5s" });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
});

after(async () => {
  await ctx?.close();
  await browser?.close();
  await srv?.stop();
  receiver?.close();
  if (!process.env.MINIPAY_SCREENSHOTS) rmSync(shots, { recursive: true, force: true });
});

async function must(status, p) {
  const r = await p;
  assert.equal(r.status, status, r.text);
  return r.body;
}

async function until(what, fn, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// nav follows a link of the console's top navigation.
async function nav(page, name) {
  await page.locator("header nav").getByRole("link", { name }).click();
}

async function signIn(page, key) {
  await page.goto(srv.url + "/");
  await page.waitForURL(/\/console\/login/);
  await page.locator("input[name=key]").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
}

test("an app: find a failed delivery, redeliver it, refund a payment from its page", async () => {
  const { call, admin, host } = srv;
  const dev = await must(201, call("POST", "/v1/developers", admin, { name: "Tea House Ltd" }));
  const created = await must(201, call("POST", "/v1/apps", admin,
    { developer: dev.id, name: "Tea House", options: ["goods", "tip"], currencies: ["CNY"] }));
  Object.assign(app, { id: created.id, key: created.secret_key, dev: dev.id });
  const ep = await must(201, call("POST", "/v1/webhook_endpoints", app.key,
    { url: `http://127.0.0.1:${receiver.address().port}/hooks`, enabled_events: ["checkout.session.completed", "refund.succeeded"] }));
  await must(200, call("POST", "/v1/wallets/usr_lin/topups", host, { amount: "500.00", currency: "CNY" }));
  const paid = [];
  for (const [amount, ref] of [["38.00", "order-1001"], ["12.50", "order-1002"], ["99.90", "order-1003"]]) {
    const s = await must(201, call("POST", "/v1/checkout/sessions", app.key, { amount, currency: "CNY", option: "goods", client_reference_id: ref }));
    await must(200, call("POST", `/v1/checkout/sessions/${s.id}/confirm`, host, { user_id: "usr_lin", client_secret: s.client_secret }));
    paid.push(s.id);
  }
  await must(201, call("POST", "/v1/checkout/sessions", app.key, { amount: "6.00", currency: "CNY", option: "tip", client_reference_id: "tip-1" }));
  await until("failed deliveries", async () => {
    const a = await call("GET", `/v1/webhook_endpoints/${ep.id}/attempts?limit=100`, app.key);
    return a.body.data.filter((x) => x.outcome === "failed").length >= 3;
  });

  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await signIn(page, app.key);
  await page.waitForURL(/\/console\/payments$/);
  assert.match(await page.getByTestId("totals").textContent(), /150\.40 CNY/);
  await page.screenshot({ path: join(shots, "console-payments.png"), fullPage: true });

  // The webhook attempts: a failed delivery, redelivered once the receiver is fixed.
  await nav(page, "Webhooks");
  await page.getByRole("link", { name: ep.id }).click();
  const failed = page.locator("tr[data-outcome=failed]").first();
  const event = await failed.getAttribute("data-event");
  assert.match(await failed.textContent(), /500/);
  assert.match(await failed.textContent(), /database is down/);
  receiverStatus = 200;
  await failed.getByRole("button", { name: "Redeliver" }).click();
  await page.getByTestId("note").filter({ hasText: `Queued for delivery again: ${event}` }).waitFor();
  await until("the redelivery to land", async () => {
    await page.reload();
    return (await page.locator(`tr[data-outcome=succeeded][data-event="${event}"]`).count()) === 1;
  });
  assert.match(await page.locator(`tr[data-outcome=succeeded][data-event="${event}"]`).textContent(), /200/);
  await page.screenshot({ path: join(shots, "console-webhook-attempts.png"), fullPage: true });

  // A refund from the payment's page.
  await nav(page, "Payments");
  await page.getByRole("link", { name: paid[0] }).click();
  await page.locator("input[name=amount]").fill("8.00");
  await page.locator("input[name=reason]").fill("one cup was cold");
  await page.getByRole("button", { name: "Refund" }).click();
  await page.getByTestId("note").filter({ hasText: "Refunded: re_" }).waitFor();
  assert.equal(await page.getByTestId("refunded").textContent(), "8.00 CNY");
  assert.equal(await page.getByTestId("payment-status").textContent(), "partially_refunded");
  const sess = await must(200, call("GET", `/v1/checkout/sessions/${paid[0]}`, app.key));
  assert.equal(sess.amount_refunded, "8.00");

  // Readable at phone width: nothing wider than the screen but the tables' own scrollers.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ["/console/payments", `/console/payments/${paid[0]}`, `/console/webhooks/${ep.id}`, "/console/balance"]) {
    await page.goto(srv.url + path);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `${path} is ${width}px wide at phone width`);
  }
  await page.setViewportSize({ width: 1280, height: 860 });

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/console\/login$/);
  await page.goto(srv.url + "/console/payments");
  await page.waitForURL(/\/console\/login\?next=/);
  await page.close();
});

test("admin: create a developer and an app, run settlement, see the chart, download the report", async () => {
  const { call, admin } = srv;
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await signIn(page, admin);
  await page.waitForURL(/\/console\/settlement_runs$/);

  // A developer and an app, with the options the platform enables for it.
  await nav(page, "Developers");
  await page.locator("[data-testid=new-developer] input[name=name]").fill("Lantern Games");
  await page.getByRole("button", { name: "Add developer" }).click();
  const devID = await page.getByTestId("developer-id").textContent();
  await page.locator("[data-testid=new-app] input[name=name]").fill("Lantern");
  await page.locator("input[name=options][value=virtual_goods]").check();
  await page.locator("input[name=options][value=tip]").check();
  await page.getByRole("button", { name: "Create app" }).click();
  const key = (await page.getByTestId("new-key").locator("code").textContent()).trim();
  const appID = await page.getByTestId("app-id").textContent();
  const got = await must(200, call("GET", `/v1/apps/${appID}`, admin));
  assert.equal(got.developer, devID);
  assert.deepEqual([...got.options].sort(), ["tip", "virtual_goods"]);
  await must(200, call("GET", "/v1/checkout/sessions", key)); // the key shown works
  await page.reload(); // a reload posts again: the same app, and no key
  assert.equal(await page.getByTestId("new-key").count(), 0);

  // Settlement now, from the form.
  await nav(page, "Settlement");
  await page.getByRole("button", { name: /Settle everything matured/ }).click();
  await page.waitForURL(/\/console\/settlement_runs\/sr_/);
  assert.equal(await page.getByTestId("run-status").textContent(), "completed");
  const runID = page.url().split("/").pop();
  const run = await must(200, call("GET", `/v1/settlement_runs/${runID}`, admin));
  const totals = run.totals.find((t) => t.currency === "CNY");
  // 150.40 paid, 8.00 refunded; fees 0.6 %, less the refund's share.
  assert.equal(totals.gross, "150.40");
  assert.equal(totals.refunds, "8.00");
  assert.equal(await page.getByTestId("net-CNY").textContent(), `${totals.net} CNY`);

  // The report, downloaded as a person would; its totals are the API's.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("report").click()]);
  const csv = readFileSync(await download.path(), "utf8").trim().split("\n").map((l) => l.split(","));
  const header = csv[0];
  const total = csv.find((r) => r[0] === "total" && r[header.indexOf("currency")] === "CNY");
  for (const col of ["gross", "refunds", "fees", "net"]) {
    assert.equal(total[header.indexOf(col)], totals[col], `report ${col}`);
  }
  const apiReport = await call("GET", `/v1/settlement_runs/${runID}/report.csv`, admin);
  assert.equal(readFileSync(await download.path(), "utf8"), apiReport.text);

  // The chart of the last 30 days, drawn by the bundled uPlot.
  await nav(page, "Settlement");
  await page.locator("[data-testid=chart-CNY][data-drawn=true] canvas").waitFor();
  assert.match(await page.locator("table[data-testid=days]").textContent(), /150\.40 CNY/);
  await page.screenshot({ path: join(shots, "console-settlement.png"), fullPage: true });

  // The payout, marked paid.
  await nav(page, "Payouts");
  await page.getByRole("button", { name: "Mark paid" }).first().click();
  await page.getByTestId("note").filter({ hasText: "Marked paid: po_" }).waitFor();
  const payouts = await must(200, call("GET", `/v1/payouts?developer=${app.dev}`, admin));
  assert.equal(payouts.data[0].status, "paid");
  await page.close();
});

test("an app answers a dispute with evidence; the admin rules", async () => {
  const { call, admin, host } = srv;
  await must(200, call("POST", "/v1/wallets/usr_mei/topups", host, { amount: "100.00", currency: "CNY" }));
  const s = await must(201, call("POST", "/v1/checkout/sessions", app.key,
    { amount: "64.00", currency: "CNY", option: "goods", client_reference_id: "order-1004" }));
  await must(200, call("POST", `/v1/checkout/sessions/${s.id}/confirm`, host, { user_id: "usr_mei", client_secret: s.client_secret }));
  const opened = await must(201, call("POST", "/v1/disputes", host, {
    payment: s.id, user_id: "usr_mei", reason: "not_as_described",
    description: "Ordered the oolong gift box; got a single sample bag.",
  }));

  await ctx.clearCookies(); // the admin of the test before is still signed in
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await signIn(page, app.key);
  await page.waitForURL(/\/console\/payments$/);
  await nav(page, "Disputes");
  const row = page.locator(`tr[data-status=needs_response]`).filter({ hasText: opened.id });
  assert.match(await row.textContent(), /64\.00 CNY/);
  await row.getByRole("link", { name: opened.id }).click();
  assert.equal(await page.getByTestId("complaint").textContent(), "Ordered the oolong gift box; got a single sample bag.");
  assert.match(await page.getByTestId("due-by").textContent(), /6 days 23 hours left/);
  const evidence = "Shipped the gift box on order-1004 (1 box, 4 tins), tracking SF1234567890; signed for by the customer.";
  await page.locator("textarea[name=evidence_text]").fill(evidence);
  await page.locator("textarea[name=evidence_files]").fill("https://files.teahouse.example/pod-1004.pdf\nhttps://files.teahouse.example/packing-1004.jpg");
  await page.screenshot({ path: join(shots, "console-dispute.png"), fullPage: true });
  await page.getByRole("button", { name: "Send evidence" }).click();
  await page.getByTestId("note").filter({ hasText: "under review" }).waitFor();
  assert.equal(await page.getByTestId("dispute-status").textContent(), "under_review");
  assert.match(await page.getByTestId("evidence").textContent(), /SF1234567890/);
  const answered = await must(200, call("GET", `/v1/disputes/${opened.id}`, app.key));
  assert.equal(answered.status, "under_review");
  assert.equal(answered.evidence.text, evidence);
  assert.deepEqual(answered.evidence.files, ["https://files.teahouse.example/pod-1004.pdf", "https://files.teahouse.example/packing-1004.jpg"]);
  const events = await must(200, call("GET", "/v1/events?limit=5", app.key));
  assert.ok(events.data.some((e) => e.type === "dispute.updated" && e.data.object.id === opened.id), "no dispute.updated event");

  // The payment's page links to its dispute.
  await page.getByTestId("payment-link").click();
  await page.locator("[data-testid=payment-disputes]").getByRole("link", { name: opened.id }).waitFor();

  // Readable at phone width.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ["/console/disputes", `/console/disputes/${opened.id}`]) {
    await page.goto(srv.url + path);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `${path} is ${width}px wide at phone width`);
  }
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/console\/login$/);

  // The admin rules it won: the developer keeps the money.
  await signIn(page, admin);
  await page.waitForURL(/\/console\/settlement_runs$/);
  await nav(page, "Disputes");
  await page.locator("select[name=status]").selectOption("under_review");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByRole("link", { name: opened.id }).click();
  await page.locator("input[name=outcome][value=won]").check();
  await page.getByRole("button", { name: "Rule" }).click();
  await page.getByTestId("note").filter({ hasText: "Ruled won" }).waitFor();
  assert.equal(await page.getByTestId("dispute-status").textContent(), "won");
  const ruled = await must(200, call("GET", `/v1/disputes/${opened.id}`, admin));
  assert.equal(ruled.outcome, "won");
  await page.close();
});

test("an app makes a plan, finds a subscription and its invoice, and cancels it", async () => {
  const { call, host } = srv;
  await ctx.clearCookies();
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await signIn(page, app.key);
  await page.waitForURL(/\/console\/payments$/);

  // A plan through the console's form.
  await nav(page, "Subscriptions");
  await page.getByRole("link", { name: "Plans »" }).click();
  await page.locator("input[name=name]").fill("Tea of the month");
  await page.locator("input[name=amount]").fill("45.00");
  await page.locator("select[name=option]").selectOption("goods");
  await page.locator("select[name=interval]").selectOption("month");
  await page.getByRole("button", { name: "Create plan" }).click();
  const note = await page.getByTestId("note").textContent();
  const plan = note.match(/plan_\w+/)[0];
  assert.match(await page.getByTestId("plans").textContent(), /45\.00 CNY \/ month/);

  // A member subscribes through the host.
  const sub = await must(201, call("POST", "/v1/subscriptions", app.key, { plan, client_reference_id: "member-88" }));
  await must(200, call("POST", "/v1/wallets/usr_wen/topups", host, { amount: "45.00", currency: "CNY" }));
  await must(200, call("POST", `/v1/subscriptions/${sub.id}/sign`, host, { user_id: "usr_wen", client_secret: sub.client_secret }));
  const invoices = await must(200, call("GET", `/v1/invoices?subscription=${sub.id}`, app.key));
  const inv = invoices.data[0].id;

  await nav(page, "Subscriptions");
  const row = page.locator("tr[data-status=active]").filter({ hasText: sub.id });
  assert.match(await row.textContent(), /member-88/);
  await row.getByRole("link", { name: sub.id }).click();
  assert.equal(await page.getByTestId("subscription-status").textContent(), "active");
  assert.equal(await page.getByTestId("cancel-at-period-end").textContent(), "no");
  assert.match(await page.getByTestId("events").textContent(), /subscription\.activated/);
  await page.screenshot({ path: join(shots, "console-subscription.png"), fullPage: true });

  // Its invoice is a payment, with its period and a way back.
  await page.getByTestId("invoices").getByRole("link", { name: inv }).click();
  assert.equal(await page.getByTestId("invoice-attempts").textContent(), "1");
  await page.getByTestId("invoice-subscription").click();
  await page.waitForURL(new RegExp(`/console/subscriptions/${sub.id}$`));

  // Cancel at period end, then now.
  await page.locator("input[name=when][value=period_end]").check();
  await page.getByRole("button", { name: "Cancel subscription" }).click();
  await page.getByTestId("note").filter({ hasText: "cancel at the end of the period" }).waitFor();
  assert.equal(await page.getByTestId("cancel-at-period-end").textContent(), "yes");
  await page.locator("input[name=when][value=now]").check();
  await page.getByRole("button", { name: "Cancel subscription" }).click();
  await page.getByTestId("note").filter({ hasText: "Canceled." }).waitFor();
  assert.equal(await page.getByTestId("subscription-status").textContent(), "canceled");
  assert.equal(await page.getByTestId("cancel-form").count(), 0);
  const got = await must(200, call("GET", `/v1/subscriptions/${sub.id}`, app.key));
  assert.equal(got.status, "canceled");
  assert.equal(got.cancellation_reason, "developer");
  const events = await must(200, call("GET", "/v1/events?limit=10", app.key));
  assert.ok(events.data.some((e) => e.type === "subscription.canceled" && e.data.object.id === sub.id), "no subscription.canceled event");

  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ["/console/subscriptions", `/console/subscriptions/${sub.id}`, "/console/plans"]) {
    await page.goto(srv.url + path);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `${path} is ${width}px wide at phone width`);
  }
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.close();
});
