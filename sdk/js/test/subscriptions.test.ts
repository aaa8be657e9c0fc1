// The subscription clients against the real binary: a developer's plan and
// subscription, the host's read, sign and the user's cancel, invoices, a
// test clock's renewal, and the refund of an invoice.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Minipay, MinipayError, MinipayHost } from "../src/server.ts";
import { startServe, type Serve } from "./harness.ts";

let mp: Serve;
let client: Minipay;
let host: MinipayHost;

before(async () => {
  mp = await startServe({ MINIPAY_SANDBOX: "true" });
  const dev = await mp.call("POST", "/v1/developers", mp.admin, { name: "JS SDK subscriptions" });
  const app = await mp.call("POST", "/v1/apps", mp.admin, {
    developer: dev.body.id, name: "Tea Club", options: ["subscription", "virtual_goods"], currencies: ["CNY"],
  });
  assert.equal(app.status, 201, JSON.stringify(app.body));
  client = new Minipay(app.body.secret_key, { baseUrl: mp.url });
  host = new MinipayHost(mp.host, { baseUrl: mp.url });
});
after(async () => {
  await mp?.stop();
});

/** The instant of an RFC 3339 time, whatever its precision. */
const at = (t: string | null | undefined) => (t ? new Date(t).toISOString() : t);

const apiCode = (status: number, code?: string) => (e: unknown) =>
  e instanceof MinipayError && e.status === status && (code === undefined || e.code === code);

test("plan, subscription, the host's sheet and signing, a renewal on a test clock, invoices, the user's cancel", async () => {
  const plan = await client.plans.create({ name: "Tea Club monthly", amount: "30.00", currency: "CNY", option: "subscription", interval: "month" });
  assert.equal(plan.interval_count, 1);
  assert.equal(plan.trial_period_days, 0);
  assert.equal((await client.plans.retrieve(plan.id)).name, "Tea Club monthly");
  assert.deepEqual((await client.plans.list()).data.map((p) => p.id), [plan.id]);
  await assert.rejects(
    client.plans.create({ name: "Gems monthly", amount: "6.00", currency: "CNY", option: "virtual_goods", interval: "month" }),
    apiCode(400, "option_not_recurring"),
  );

  const clock = await client.testClocks.create({ frozen_time: "2026-01-31T10:00:00Z" });
  assert.equal(clock.status, "ready");
  const sub = await client.subscriptions.create({ plan: plan.id, test_clock: clock.id, metadata: { member: "m-1" } });
  assert.equal(sub.status, "incomplete");
  assert.ok(sub.client_secret);
  assert.equal(sub.plan.id, plan.id);

  const sheet = await host.subscriptions.retrieve(sub.id);
  assert.equal(sheet.app_name, "Tea Club");
  assert.equal(sheet.plan.amount, "30.00");
  assert.ok(!("client_secret" in sheet) && !("customer" in sheet), JSON.stringify(sheet));

  await host.wallets.topUp("usr_js_member", { amount: "100.00", currency: "CNY" });
  await assert.rejects(host.subscriptions.sign(sub.id, { user_id: "usr_js_member", client_secret: "wrong" }), apiCode(400, "client_secret_invalid"));
  const signed = await host.subscriptions.sign(sub.id, { user_id: "usr_js_member", client_secret: sub.client_secret! }, { idempotencyKey: "sign-js-1" });
  assert.equal(signed.status, "active");
  assert.equal(at(signed.current_period_end), "2026-02-28T10:00:00.000Z"); // 31 January's month ends on its last day
  const replay = await host.subscriptions.sign(sub.id, { user_id: "usr_js_member", client_secret: sub.client_secret! }, { idempotencyKey: "sign-js-1" });
  assert.equal(replay.id, sub.id);
  await assert.rejects(host.subscriptions.sign(sub.id, { user_id: "usr_js_member", client_secret: sub.client_secret! }), apiCode(409, "subscription_already_signed"));
  assert.equal((await host.wallets.retrieve("usr_js_member")).balances[0].available, "70.00");

  const advanced = await client.testClocks.advance(clock.id, { frozen_time: "2026-03-01T00:00:00Z" });
  assert.equal(advanced.status, "ready");
  assert.equal(at((await client.testClocks.retrieve(clock.id)).frozen_time), "2026-03-01T00:00:00.000Z");
  const invoices = (await client.invoices.list({ subscription: sub.id })).data;
  assert.equal(invoices.length, 2);
  assert.ok(invoices.every((i) => i.status === "paid" && i.amount === "30.00" && i.fee === "4.50"), JSON.stringify(invoices));
  assert.equal((await host.wallets.retrieve("usr_js_member")).balances[0].available, "40.00");
  const first = await client.invoices.retrieve(signed.latest_invoice!);
  assert.equal(at(first.period_start), "2026-01-31T10:00:00.000Z");


  await assert.rejects(host.subscriptions.cancel(sub.id, { user_id: "usr_js_other" }), apiCode(403, "not_subscriber"));
  const canceled = await host.subscriptions.cancel(sub.id, { user_id: "usr_js_member" });
  assert.equal(canceled.cancel_at_period_end, true);
  assert.equal(canceled.status, "active");
  const read = await client.subscriptions.retrieve(sub.id);
  assert.equal(read.cancel_at_period_end, true);
  assert.match(read.customer!, /^ou_/);
  assert.deepEqual((await client.subscriptions.list({ status: "active" })).data.map((s) => s.id), [sub.id]);
});

test("insufficient funds at signing leaves it incomplete; signed after a top-up, an invoice refunded; the developer cancels at once, not twice", async () => {
  const plan = await client.plans.create({ name: "Weekly tea", amount: "8.00", currency: "CNY", option: "subscription", interval: "week" });
  const sub = await client.subscriptions.create({ plan: plan.id });
  await host.wallets.topUp("usr_js_short", { amount: "1.00", currency: "CNY" });
  await assert.rejects(host.subscriptions.sign(sub.id, { user_id: "usr_js_short", client_secret: sub.client_secret! }), apiCode(402, "insufficient_funds"));
  assert.equal((await client.subscriptions.retrieve(sub.id)).status, "incomplete");
  assert.equal((await host.wallets.retrieve("usr_js_short")).balances[0].available, "1.00");
  await host.wallets.topUp("usr_js_short", { amount: "10.00", currency: "CNY" });
  const signed = await host.subscriptions.sign(sub.id, { user_id: "usr_js_short", client_secret: sub.client_secret! });
  assert.equal(signed.status, "active");
  const invoice = await client.invoices.retrieve(signed.latest_invoice!);
  assert.equal(invoice.status, "paid");
  assert.equal(invoice.fee, "1.20");
  // A paid invoice is a payment: refunded with the fee returned pro rata.
  const refund = await client.refunds.create({ invoice: invoice.id, amount: "4.00" });
  assert.equal(refund.amount, "4.00");
  assert.equal(refund.fee_refunded, "0.60");
  assert.equal((await client.invoices.retrieve(invoice.id)).amount_refunded, "4.00");
  assert.equal((await host.wallets.retrieve("usr_js_short")).balances[0].available, "7.00");
  const canceled = await client.subscriptions.cancel(sub.id);
  assert.equal(canceled.status, "canceled");
  assert.equal(canceled.cancellation_reason, "developer");
  await assert.rejects(client.subscriptions.cancel(sub.id), apiCode(409, "subscription_canceled"));
});
