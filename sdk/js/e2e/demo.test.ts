// The whole flow in a real browser: "minipay dev" (the real binary, a
// fresh database), the host page in headless Chromium, the demo mini-app
// in its frame, the SDK's bridge, the payment sheet, the host's confirm,
// the webhook at the mini-app's backend. Checks the ledger through the API.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { freshDatabase, startBinary } from "../test/harness.ts";

const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
// Screenshots go to a temporary directory unless asked for (make screenshots
// writes docs/img).
const shots = resolve(process.env.MINIPAY_SCREENSHOTS || mkdtempSync(join(tmpdir(), "minipay-shots-")));

let stopDev: () => Promise<void>;
let dropDb: () => void;
let ctx: BrowserContext;
let profile: string;
let out: Record<string, string> = {};

function field(stdout: string, name: string): string {
  const m = stdout.match(new RegExp(`^\\s*${name}:\\s+(\\S+)`, "m"));
  if (!m) throw new Error(`no "${name}" in minipay dev's output:\n${stdout}`);
  return m[1];
}

async function api(method: string, path: string, key: string, body?: unknown) {
  const res = await fetch(out.api + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function wallet(user: string): Promise<string> {
  const w = await api("GET", `/v1/wallets/${user}`, out.host);
  assert.equal(w.status, 200);
  return w.body.balances.find((b: any) => b.currency === "CNY").available;
}

before(async () => {
  assert.ok(existsSync(chromiumPath), `no Chromium at ${chromiumPath}: apt-get install -y chromium`);
  mkdirSync(shots, { recursive: true });
  const db = freshDatabase();
  dropDb = db.drop;
  const dev = await startBinary(
    ["dev", "--app-addr", "127.0.0.1:0"],
    { DATABASE_URL: db.url, MINIPAY_ADDR: "127.0.0.1:0", MINIPAY_SECRET: "e2e-browser-secret" },
    /demo users:.*\n/,
  );
  stopDev = dev.stop;
  const s = dev.stdout();
  out = {
    page: field(s, "host page"),
    api: field(s, "API"),
    admin: field(s, "admin key"),
    host: field(s, "host key"),
    sk: field(s, "secret key"),
    app: field(s, "mini-app"),
  };
  profile = mkdtempSync(join(tmpdir(), "minipay-chromium-"));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1060, height: 840 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
});

after(async () => {
  await ctx?.close();
  await stopDev?.();
  dropDb?.();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (!process.env.MINIPAY_SCREENSHOTS) rmSync(shots, { recursive: true, force: true });
});

async function open(user: string): Promise<Page> {
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(`${out.page}?user=${user}`);
  await page.locator("body[data-ready=true]").waitFor();
  await page.frameLocator("[data-testid=miniapp]").locator("body[data-ready=true]").waitFor();
  return page;
}

test("a purchase: sheet, pay, the session completes, the webhook arrives", async () => {
  const page = await open("usr_demo_lin");
  const app = page.frameLocator("[data-testid=miniapp]");
  assert.equal(await page.getByTestId("wallet").textContent(), "200.00 CNY");
  await app.getByTestId("buy-gems").click();
  await page.getByTestId("sheet").waitFor({ state: "visible" });
  assert.equal(await page.getByTestId("sheet-total").textContent(), "6.00 CNY");
  // The sheet names the mini-app as the host key's read of the session does.
  assert.equal(await page.getByTestId("sheet-app").textContent(), "Tea & Gems");
  await page.screenshot({ path: join(shots, "demo-payment-sheet.png") });
  await page.getByTestId("sheet-pay").click();

  const status = app.getByTestId("status");
  await status.filter({ hasText: "Paid 6.00 CNY" }).waitFor();
  const sessionId = (await status.textContent())!.match(/\((cs_[^)]+)\)/)![1];
  await app.getByTestId("webhooks").filter({ hasText: `checkout.session.completed · ${sessionId}` }).waitFor();
  await page.getByTestId("wallet").filter({ hasText: "194.00 CNY" }).waitFor();
  await page.screenshot({ path: join(shots, "demo-paid.png") });

  // The ledger, through the API.
  assert.equal(await wallet("usr_demo_lin"), "194.00");
  const sess = await api("GET", `/v1/checkout/sessions/${sessionId}`, out.sk);
  assert.equal(sess.body.status, "complete");
  assert.equal(sess.body.payment_status, "paid");
  assert.equal(sess.body.fee, "1.80"); // virtual goods: 30 %
  const balance = await api("GET", "/v1/balance", out.sk);
  assert.deepEqual(balance.body.pending, [{ currency: "CNY", amount: "4.20" }]);
  const tb = await api("GET", "/v1/ledger/trial_balance", out.admin);
  assert.equal(tb.body.balanced, true);
  // The event in the log is the one the backend received and verified.
  const events = await api("GET", "/v1/events?type=checkout.session.completed", out.sk);
  const ev = events.body.data.find((e: any) => e.data.object.id === sessionId);
  assert.ok(ev, "no checkout.session.completed event for the session");
  const received = await (await fetch(out.app + "/api/webhooks")).json();
  assert.ok(received.data.some((r: any) => r.id === ev.id && r.type === "checkout.session.completed"), JSON.stringify(received));
});

test("the host reads a session with the host key: no client secret, no customer, the app's name", async () => {
  const created = await api("POST", "/v1/checkout/sessions", out.sk, { amount: "2.00", currency: "CNY", option: "tip" });
  assert.equal(created.status, 201);
  const read = await api("GET", `/v1/checkout/sessions/${created.body.id}`, out.host);
  assert.equal(read.status, 200);
  assert.equal(read.body.app_name, "Tea & Gems");
  assert.equal(read.body.amount_total, "2.00");
  assert.ok(!("client_secret" in read.body) && !("customer" in read.body), JSON.stringify(read.body));
  // The host page's server shows its own mini-app's sessions only.
  const sheet = await (await fetch(`${out.page}api/sessions/${created.body.id}`)).json();
  assert.equal(sheet.app_name, "Tea & Gems");
  const dev = await api("POST", "/v1/developers", out.admin, { name: "Elsewhere" });
  const other = await api("POST", "/v1/apps", out.admin, { developer: dev.body.id, name: "Elsewhere", options: ["tip"], currencies: ["CNY"] });
  const foreign = await api("POST", "/v1/checkout/sessions", other.body.secret_key, { amount: "1.00", currency: "CNY", option: "tip" });
  assert.equal(foreign.status, 201);
  assert.equal((await fetch(`${out.page}api/sessions/${foreign.body.id}`)).status, 404);
});

test("insufficient funds: the sheet says so, nothing is charged, the session stays open", async () => {
  const page = await open("usr_demo_kai");
  const app = page.frameLocator("[data-testid=miniapp]");
  assert.equal(await page.getByTestId("wallet").textContent(), "1.00 CNY");
  const before = (await api("GET", "/v1/checkout/sessions?status=open&limit=100", out.sk)).body.data.length;
  // Everything the host's bridge posts to the mini-app's frame, as the
  // mini-app receives it.
  const appFrame = (await (await page.locator("[data-testid=miniapp]").elementHandle())!.contentFrame())!;
  await appFrame.evaluate(() => {
    (window as any).__bridge = [];
    window.addEventListener("message", (e) => (window as any).__bridge.push(JSON.stringify(e.data)));
  });
  await app.getByTestId("buy-tea").click();
  await page.getByTestId("sheet").waitFor({ state: "visible" });
  assert.equal(await page.getByTestId("sheet-total").textContent(), "38.00 CNY");
  await page.getByTestId("sheet-pay").click();
  await page.getByTestId("sheet-error").filter({ hasText: "Not enough money" }).waitFor();
  await page.screenshot({ path: join(shots, "demo-insufficient-funds.png") });
  await app.getByTestId("status").filter({ hasText: "Not enough money in the wallet" }).waitFor();
  // The failure crossed the bridge as its code only: the mini-app never
  // reads the host's user id, nor any message minipay wrote for the host.
  const bridged: string[] = await appFrame.evaluate(() => (window as any).__bridge);
  const result = bridged.map((m) => JSON.parse(m)).find((m) => m.type === "minipay:payment_result");
  assert.deepEqual(result?.error, { code: "insufficient_funds" }, bridged.join("\n"));
  assert.ok(!bridged.join("").includes("usr_demo_kai"), bridged.join("\n"));
  assert.equal(await wallet("usr_demo_kai"), "1.00");
  const open_ = (await api("GET", "/v1/checkout/sessions?status=open&limit=100", out.sk)).body.data;
  assert.equal(open_.length, before + 1);
  const requested = (await page.getByTestId("bridge-log").locator("li").last().textContent())!;
  const sess = (await api("GET", `/v1/checkout/sessions/${requested.match(/payment_request \S+ (cs_\S+)/)![1]}`, out.sk)).body;
  assert.equal(sess.status, "open");
  assert.equal(sess.amount_total, "38.00");
  assert.equal(sess.payment_status, "unpaid");
});

test("cancel: the user closes the sheet, nothing is charged", async () => {
  const page = await open("usr_demo_lin");
  const app = page.frameLocator("[data-testid=miniapp]");
  const walletBefore = await wallet("usr_demo_lin");
  const eventsBefore = (await api("GET", "/v1/events?limit=100", out.sk)).body.data.length;
  await app.getByTestId("buy-tip").click();
  await page.getByTestId("sheet").waitFor({ state: "visible" });
  await page.getByTestId("sheet-cancel").click();
  await app.getByTestId("status").filter({ hasText: "Payment canceled" }).waitFor();
  await page.getByTestId("sheet").waitFor({ state: "hidden" });
  await page.screenshot({ path: join(shots, "demo-canceled.png") });
  assert.equal(await wallet("usr_demo_lin"), walletBefore);
  assert.equal((await api("GET", "/v1/events?limit=100", out.sk)).body.data.length, eventsBefore);
  // The backend received the purchase's webhook and nothing since.
  const received = (await (await fetch(out.app + "/api/webhooks")).json()) as any;
  assert.deepEqual(received.data.map((r: any) => r.type), ["checkout.session.completed"]);
});

test("the SDK outside a host page rejects with a typed error", async () => {
  const page = ctx.pages()[0];
  await page.goto(out.app + "/");
  await page.locator("body[data-ready=true]").waitFor();
  await page.getByTestId("buy-gems").click();
  await page.getByTestId("status").filter({ hasText: "not running inside a host page" }).waitFor();
});

test("expired: the app cancels the session while the sheet is open; paying then fails as expired", async () => {
  const page = await open("usr_demo_lin");
  const app = page.frameLocator("[data-testid=miniapp]");
  const walletBefore = await wallet("usr_demo_lin");
  await app.getByTestId("buy-gems").click();
  await page.getByTestId("sheet").waitFor({ state: "visible" });
  // The session being paid, from the request the host page logged.
  const requested = (await page.getByTestId("bridge-log").locator("li").first().textContent())!;
  const id = requested.match(/payment_request \S+ (cs_\S+)/)![1];
  assert.equal((await api("POST", `/v1/checkout/sessions/${id}/cancel`, out.sk, {})).status, 200);
  await page.getByTestId("sheet-pay").click();
  await page.getByTestId("sheet").waitFor({ state: "hidden" });
  await app.getByTestId("status").filter({ hasText: "This order expired" }).waitFor();
  assert.equal(await wallet("usr_demo_lin"), walletBefore);
  assert.equal((await api("GET", `/v1/checkout/sessions/${id}`, out.sk)).body.status, "canceled");
});

test("a page that is not the configured host frames the mini-app: it gets no client secret and cannot fake a payment", async () => {
  const { createServer } = await import("node:http");
  // A hostile framer: records whatever the mini-app posts to it, and
  // answers every request it sees with a forged "paid".
  const bare = createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html" }).end(`<iframe id="f" src="${out.app}/" style="width:400px;height:600px"></iframe>
<script>
  window.got = [];
  addEventListener("message", (e) => {
    window.got.push(JSON.stringify(e.data));
    const m = e.data || {};
    e.source.postMessage({ minipay: 1, type: "minipay:payment_result", id: m.id, ok: true,
      session: { id: m.sessionId, status: "complete", payment_status: "paid", amount_total: "0.01", currency: "CNY" } }, "*");
  });
</script>`);
  });
  await new Promise<void>((r) => bare.listen(0, "127.0.0.1", r));
  try {
    const page = ctx.pages()[0];
    await page.goto(`http://127.0.0.1:${(bare.address() as { port: number }).port}/`);
    const app = page.frameLocator("#f");
    await app.locator("body[data-ready=true]").waitFor();
    await app.getByTestId("buy-tip").click();
    await app.getByTestId("status").filter({ hasText: "Could not reach the host" }).waitFor({ timeout: 20_000 });
    assert.deepEqual(await page.evaluate(() => (window as any).got), [], "the framer received the payment request");
  } finally {
    bare.close();
  }
});

test("a native WebView host: the mini-app at top level pays through window.minipayHost", async () => {
  // What a native host does (docs/hosts.md): inject window.minipayHost,
  // take each request as JSON, check it, confirm from its own server with
  // the host key, and answer through window.minipayHostReply.
  const page = await ctx.newPage();
  const seen: any[] = [];
  try {
    await page.exposeFunction("nativeHostPost", async (json: string) => {
      const m = JSON.parse(json);
      seen.push(m);
      const reply = (r: object) => page.evaluate(`window.minipayHostReply(${JSON.stringify({ minipay: 1, id: m.id, ...r })})`);
      await reply({ type: "minipay:payment_ack" });
      const sheet = await api("GET", `/v1/checkout/sessions/${m.sessionId}`, out.sk); // the host's own read
      assert.equal(sheet.body.status, "open");
      const paid = await fetch(`${out.api}/v1/checkout/sessions/${m.sessionId}/confirm`, {
        method: "POST",
        headers: { Authorization: `Bearer ${out.host}`, "Content-Type": "application/json", "Idempotency-Key": m.id },
        body: JSON.stringify({ user_id: "usr_demo_lin", client_secret: m.clientSecret }),
      });
      const session = await paid.json();
      await reply(paid.ok ? { type: "minipay:payment_result", ok: true, session } : {
        type: "minipay:payment_result", ok: false, error: { code: "host_error", message: session.error?.message ?? "failed" },
      });
    });
    // A string, not a function: the test runner's compiler may wrap
    // functions in helpers the page does not have.
    await page.addInitScript({ content: "window.minipayHost = { postMessage: (s) => window.nativeHostPost(s) };" });
    await page.goto(out.app + "/");
    await page.locator("body[data-ready=true]").waitFor();
    await page.getByTestId("buy-gems").click();
    await page.getByTestId("status").filter({ hasText: "Paid 6.00 CNY" }).waitFor();
    assert.equal(seen.length, 1);
    assert.equal(seen[0].type, "minipay:payment_request");
    assert.match(seen[0].sessionId, /^cs_/);
  } finally {
    await page.close();
  }
});

// Memberships: the mini-app's backend makes a subscription to its monthly
// plan, requestSubscription asks the host page, the host shows its
// agreement sheet and signs with the host key; the user cancels from the
// host page.
let membership = "";

/** Everything the host's bridge posts to the mini-app's frame, from now on. */
async function recordBridge(page: Page) {
  const appFrame = (await (await page.locator("[data-testid=miniapp]").elementHandle())!.contentFrame())!;
  await appFrame.evaluate(() => {
    (window as any).__bridge = [];
    window.addEventListener("message", (e) => (window as any).__bridge.push(JSON.stringify(e.data)));
  });
  return async () => ((await appFrame.evaluate(() => (window as any).__bridge)) as string[]).map((m) => JSON.parse(m));
}

/** The subscription the host page was last asked to sign, from its bridge log. */
async function requestedSubscription(page: Page): Promise<string> {
  const logged = await page.getByTestId("bridge-log").locator("li").allTextContents();
  const line = logged.find((l) => /subscription_request \S+ sub_/.test(l));
  assert.ok(line, logged.join("\n"));
  return line.match(/subscription_request \S+ (sub_\S+)/)![1];
}

test("a membership: the agreement sheet shows the plan, the user agrees, the first month is charged", async () => {
  const page = await open("usr_demo_lin");
  const app = page.frameLocator("[data-testid=miniapp]");
  const before = await wallet("usr_demo_lin");
  await app.getByTestId("join-club").click();
  await page.getByTestId("agreement").waitFor({ state: "visible" });
  assert.equal(await page.getByTestId("agreement-app").textContent(), "Tea & Gems");
  assert.equal(await page.getByTestId("agreement-plan").textContent(), "Tea Club monthly");
  assert.equal(await page.getByTestId("agreement-amount").textContent(), "30.00 CNY / month");
  assert.equal(await page.getByTestId("agreement-trial").textContent(), "none");
  await page.locator("#agreement-balance").filter({ hasText: "balance" }).waitFor();
  await page.screenshot({ path: join(shots, "demo-agreement.png") });
  await page.getByTestId("agreement-sign").click();

  const status = app.getByTestId("status");
  await status.filter({ hasText: "Welcome to Tea Club monthly" }).waitFor();
  membership = (await status.textContent())!.match(/\((sub_[^)]+)\)/)![1];
  await page.getByTestId("agreement").waitFor({ state: "hidden" });

  // The ledger and the subscription, through the API.
  const expected = (Number(before) - 30).toFixed(2);
  assert.equal(await wallet("usr_demo_lin"), expected);
  const sub = (await api("GET", `/v1/subscriptions/${membership}`, out.sk)).body;
  assert.equal(sub.status, "active");
  assert.match(sub.customer, /^ou_/);
  assert.equal(sub.cancel_at_period_end, false);
  const invoices = (await api("GET", `/v1/invoices?subscription=${membership}`, out.sk)).body.data;
  assert.equal(invoices.length, 1, JSON.stringify(invoices));
  assert.equal(invoices[0].status, "paid");
  assert.equal(invoices[0].amount, "30.00");
  assert.equal(invoices[0].fee, "4.50"); // the subscription option: 15 %
  assert.equal((await api("GET", "/v1/ledger/trial_balance", out.admin)).body.balanced, true);
  // The backend received the signed subscription's webhook.
  await app.getByTestId("webhooks").filter({ hasText: `subscription.activated · ${membership}` }).waitFor();
});

test("insufficient funds at signing: the sheet says so, nothing is charged, the subscription stays incomplete", async () => {
  const page = await open("usr_demo_kai");
  const app = page.frameLocator("[data-testid=miniapp]");
  const bridged = await recordBridge(page);
  await app.getByTestId("join-club").click();
  await page.getByTestId("agreement").waitFor({ state: "visible" });
  await page.getByTestId("agreement-sign").click();
  await page.getByTestId("agreement-error").filter({ hasText: "Not enough money" }).waitFor();
  await app.getByTestId("status").filter({ hasText: "Not enough money in the wallet for the first month" }).waitFor();
  const messages = await bridged();
  const result = messages.find((m) => m.type === "minipay:subscription_result");
  assert.deepEqual(result?.error, { code: "insufficient_funds" }, JSON.stringify(messages));
  assert.ok(!JSON.stringify(messages).includes("usr_demo_kai"), JSON.stringify(messages));
  assert.equal(await wallet("usr_demo_kai"), "1.00");
  const id = await requestedSubscription(page);
  const sub = (await api("GET", `/v1/subscriptions/${id}`, out.sk)).body;
  assert.equal(sub.status, "incomplete");
  assert.equal(sub.customer ?? null, null);
  const invoices = (await api("GET", `/v1/invoices?subscription=${id}`, out.sk)).body.data;
  assert.ok(invoices.every((i: any) => i.status !== "paid"), JSON.stringify(invoices));
});

test("the user declines the agreement: nothing is charged", async () => {
  const page = await open("usr_demo_lin");
  const app = page.frameLocator("[data-testid=miniapp]");
  const before = await wallet("usr_demo_lin");
  await app.getByTestId("join-club").click();
  await page.getByTestId("agreement").waitFor({ state: "visible" });
  await page.getByTestId("agreement-decline").click();
  await app.getByTestId("status").filter({ hasText: "Maybe later. Nothing was charged." }).waitFor();
  await page.getByTestId("agreement").waitFor({ state: "hidden" });
  assert.equal(await wallet("usr_demo_lin"), before);
  const sub = (await api("GET", `/v1/subscriptions/${await requestedSubscription(page)}`, out.sk)).body;
  assert.equal(sub.status, "incomplete");
});

test("a plan with a trial: the sheet says so, signing charges nothing and the subscription is trialing", async () => {
  const plan = await api("POST", "/v1/plans", out.sk, { name: "Tea Club trial", amount: "9.00", currency: "CNY", option: "subscription", interval: "month", trial_period_days: 7 });
  assert.equal(plan.status, 201, JSON.stringify(plan.body));
  const sub = await api("POST", "/v1/subscriptions", out.sk, { plan: plan.body.id });
  assert.equal(sub.status, 201, JSON.stringify(sub.body));
  const page = await open("usr_demo_lin");
  const before = await wallet("usr_demo_lin");
  // The mini-app's own code, as its front end would run it with this subscription.
  const appFrame = (await (await page.locator("[data-testid=miniapp]").elementHandle())!.contentFrame())!;
  await appFrame.evaluate(`import("/minipay.js").then(async (sdk) => {
    const config = await (await fetch("/api/config")).json();
    const hostOrigin = location.protocol + "//" + location.hostname + ":" + config.host_port;
    window.__trial = sdk.requestSubscription({ subscriptionId: ${JSON.stringify(sub.body.id)}, clientSecret: ${JSON.stringify(sub.body.client_secret)} }, { hostOrigin })
      .then((s) => (window.__signed = s.status), (e) => (window.__signed = "error " + e.code));
  })`);
  await page.getByTestId("agreement").waitFor({ state: "visible" });
  assert.equal(await page.getByTestId("agreement-plan").textContent(), "Tea Club trial");
  assert.equal(await page.getByTestId("agreement-amount").textContent(), "9.00 CNY / month");
  assert.equal(await page.getByTestId("agreement-trial").textContent(), "7 days free");
  assert.equal(await page.getByTestId("agreement-first").textContent(), "after the trial, 9.00 CNY");
  await page.getByTestId("agreement-sign").click();
  await appFrame.waitForFunction("window.__signed !== undefined");
  assert.equal(await appFrame.evaluate("window.__signed"), "trialing");
  assert.equal(await wallet("usr_demo_lin"), before);
  const read = (await api("GET", `/v1/subscriptions/${sub.body.id}`, out.sk)).body;
  assert.equal(read.status, "trialing");
  assert.ok(read.trial_end, JSON.stringify(read));
});

test("the user cancels the membership from the host page: it ends with the period paid for", async () => {
  assert.ok(membership, "the membership test did not run");
  const page = await open("usr_demo_lin");
  const before = await wallet("usr_demo_lin");
  await page.getByTestId("open-memberships").click();
  await page.getByTestId("memberships").waitFor({ state: "visible" });
  const item = page.locator(`[data-testid=membership][data-subscription="${membership}"]`);
  assert.match((await item.textContent())!, /Tea Club monthly.*30\.00 CNY \/ month.*Tea & Gems · active · renews/);
  await item.getByTestId("membership-cancel").click();
  await item.getByTestId("membership-state").filter({ hasText: "canceled · yours until" }).waitFor();
  await page.screenshot({ path: join(shots, "demo-membership-canceled.png") });
  const sub = (await api("GET", `/v1/subscriptions/${membership}`, out.sk)).body;
  assert.equal(sub.cancel_at_period_end, true);
  assert.equal(sub.cancellation_reason, "user");
  assert.equal(sub.status, "active"); // the user keeps the month paid for
  assert.equal(await wallet("usr_demo_lin"), before);
  // Another user of the host cannot cancel it.
  const other = await fetch(`${out.page}api/subscriptions/${membership}/cancel`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: "usr_demo_kai" }),
  });
  assert.ok(other.status >= 400 && other.status < 500, String(other.status));
  await page.getByTestId("memberships-close").click();
  await page.getByTestId("memberships").waitFor({ state: "hidden" });
});

test("the host reads a subscription with the host key: no client secret, no customer, the app's name; the page shows its own app's only", async () => {
  const plans = (await api("GET", "/v1/plans?limit=100", out.sk)).body.data;
  const plan = plans.find((p: any) => p.name === "Tea Club monthly");
  // Three clicks on Join (signed, short, declined), one plan: the backend makes it once.
  assert.equal(plans.filter((p: any) => p.name === "Tea Club monthly").length, 1, JSON.stringify(plans));
  assert.ok(plan, JSON.stringify(plans));
  const created = await api("POST", "/v1/subscriptions", out.sk, { plan: plan.id });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const read = await api("GET", `/v1/subscriptions/${created.body.id}`, out.host);
  assert.equal(read.status, 200);
  assert.equal(read.body.app_name, "Tea & Gems");
  assert.ok(!("client_secret" in read.body) && !("customer" in read.body), JSON.stringify(read.body));
  assert.equal((await (await fetch(`${out.page}api/subscriptions/${created.body.id}`)).json()).app_name, "Tea & Gems");
  const dev = await api("POST", "/v1/developers", out.admin, { name: "Elsewhere clubs" });
  const other = await api("POST", "/v1/apps", out.admin, { developer: dev.body.id, name: "Elsewhere clubs", options: ["subscription"], currencies: ["CNY"] });
  const foreignPlan = await api("POST", "/v1/plans", other.body.secret_key, { name: "Other club", amount: "9.00", currency: "CNY", option: "subscription", interval: "month" });
  assert.equal(foreignPlan.status, 201, JSON.stringify(foreignPlan.body));
  const foreign = await api("POST", "/v1/subscriptions", other.body.secret_key, { plan: foreignPlan.body.id });
  assert.equal(foreign.status, 201);
  assert.equal((await fetch(`${out.page}api/subscriptions/${foreign.body.id}`)).status, 404);
});
