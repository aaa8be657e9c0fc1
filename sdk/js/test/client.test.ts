import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Minipay, MinipayError, MinipayHost, MinipayNetworkError, verifyWebhook, WebhookVerificationError } from "../src/server.ts";
import { repoRoot, startServe, type Serve } from "./harness.ts";

let mp: Serve;
let sk: string;

before(async () => {
  mp = await startServe();
  sk = await mp.newApp();
});
after(async () => {
  await mp?.stop();
});

test("create, pay, read, refund, balance", async () => {
  const client = new Minipay(sk, { baseUrl: mp.url });
  const session = await client.checkout.sessions.create({
    line_items: [{ name: "Gem pack", unit_amount: "19.99", quantity: 2 }],
    currency: "CNY",
    option: "virtual_goods",
    client_reference_id: "order-1",
    metadata: { player: "p-1" },
  });
  assert.equal(session.status, "open");
  assert.equal(session.amount_total, "39.98");
  assert.ok(session.client_secret);

  assert.equal((await mp.call("POST", "/v1/wallets/usr_js/topups", mp.host, { amount: "50.00", currency: "CNY" })).status, 200);
  const paid = await mp.call("POST", `/v1/checkout/sessions/${session.id}/confirm`, mp.host, {
    user_id: "usr_js",
    client_secret: session.client_secret,
  });
  assert.equal(paid.status, 200, JSON.stringify(paid.body));

  const read = await client.checkout.sessions.retrieve(session.id);
  assert.equal(read.payment_status, "paid");
  assert.equal(read.fee, "11.99");
  assert.match(read.customer!, /^ou_/);
  const list = await client.checkout.sessions.list({ status: "complete", limit: 5 });
  assert.deepEqual(list.data.map((s) => s.id), [session.id]);

  const refund = await client.refunds.create({ checkout_session: session.id, amount: "19.99", reason: "requested_by_customer" });
  assert.equal(refund.amount, "19.99");
  assert.equal(refund.fee_refunded, "6.00");
  assert.equal((await client.refunds.retrieve(refund.id)).id, refund.id);

  const balance = await client.balance.retrieve();
  assert.deepEqual(balance.pending, [{ currency: "CNY", amount: "14.00" }]); // (39.98 - 11.99) - (19.99 - 6.00)

  const wallet = await mp.call("GET", "/v1/wallets/usr_js", mp.host);
  assert.equal(wallet.body.balances[0].available, "30.01"); // 50 - 39.98 + 19.99
});

test("the same idempotency key creates one session", async () => {
  const client = new Minipay(sk, { baseUrl: mp.url });
  const p = { amount: "3.00", currency: "CNY", option: "goods", client_reference_id: "order-idem" };
  const a = await client.checkout.sessions.create(p, { idempotencyKey: "order-idem" });
  const b = await client.checkout.sessions.create(p, { idempotencyKey: "order-idem" });
  assert.equal(a.id, b.id);
  await assert.rejects(
    client.checkout.sessions.create({ ...p, amount: "4.00" }, { idempotencyKey: "order-idem" }),
    (e: unknown) => e instanceof MinipayError && e.status === 409 && e.code === "idempotency_conflict",
  );
});

test("typed API errors", async () => {
  const client = new Minipay(sk, { baseUrl: mp.url });
  await assert.rejects(
    client.checkout.sessions.create({ amount: "1.001", currency: "CNY", option: "goods" }),
    (e: unknown) =>
      e instanceof MinipayError && e.status === 400 && e.type === "invalid_request_error" &&
      e.code === "amount_precision" && e.param === "amount" && /^req_/.test(e.requestId ?? ""),
  );
  await assert.rejects(client.refunds.retrieve("re_nope"), (e: unknown) => e instanceof MinipayError && e.status === 404);
  await assert.rejects(new Minipay("sk_wrong", { baseUrl: mp.url }).balance.retrieve(), (e: unknown) => e instanceof MinipayError && e.status === 401);
});

test("retries keep the idempotency key; a lost response does not create twice", async () => {
  // A real proxy in front of minipay that forwards the first request and
  // then drops the connection, as a network failure after the server
  // committed would.
  const { createServer } = await import("node:http");
  const keys: string[] = [];
  let n = 0;
  const proxy = createServer(async (req, res) => {
    n++;
    keys.push(String(req.headers["idempotency-key"] ?? ""));
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const upstream = await fetch(mp.url + req.url, {
      method: req.method,
      headers: { authorization: String(req.headers.authorization), "content-type": "application/json", "idempotency-key": keys.at(-1)! },
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    });
    const text = await upstream.text();
    if (n === 1) {
      req.socket.destroy();
      return;
    }
    res.writeHead(upstream.status, { "content-type": "application/json" }).end(text);
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const port = (proxy.address() as { port: number }).port;
  try {
    const client = new Minipay(sk, { baseUrl: `http://127.0.0.1:${port}`, minBackoffMs: 5 });
    const s = await client.checkout.sessions.create({ amount: "7.77", currency: "CNY", option: "goods", client_reference_id: "lost-1" });
    assert.equal(keys.length, 2);
    assert.ok(keys[0].startsWith("idk_"));
    assert.equal(keys[0], keys[1]);
    const all = await new Minipay(sk, { baseUrl: mp.url }).checkout.sessions.list({ limit: 100 });
    assert.equal(all.data.filter((x) => x.client_reference_id === "lost-1").length, 1);
    assert.equal(all.data.find((x) => x.client_reference_id === "lost-1")!.id, s.id);
  } finally {
    proxy.close();
  }
});

test("a server that never answers is a network error after the retries, naming the URL and the cause", async () => {
  const { createServer } = await import("node:net");
  const srv = createServer().listen(0, "127.0.0.1");
  await new Promise((r) => srv.once("listening", r));
  const closed = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  await new Promise((r) => srv.close(r));
  const client = new Minipay(sk, { baseUrl: closed, maxRetries: 2, minBackoffMs: 1 });
  await assert.rejects(client.balance.retrieve(), (err: unknown) => {
    assert.ok(err instanceof MinipayNetworkError);
    assert.equal(err.url, closed + "/v1/balance");
    assert.match(err.message, new RegExp(`^GET ${closed}/v1/balance: .*ECONNREFUSED`));
    return true;
  });
});

test("a signal aborted while a retryable answer arrives rejects with the caller's reason, without a retry", { timeout: 20_000 }, async () => {
  // The server aborts the caller's signal and then answers 503 with a
  // Retry-After of an hour: a client that went on to the backoff would wait
  // out the hour (and this test its timeout) before rejecting.
  const { createServer } = await import("node:http");
  const ctl = new AbortController();
  let requests = 0;
  const srv = createServer((_req, res) => {
    requests++;
    ctl.abort(new Error("caller gave up"));
    res.writeHead(503, { "content-type": "application/json", "retry-after": "3600" }).end(
      JSON.stringify({ error: { type: "api_error", code: "unavailable", message: "try later" } }),
    );
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  try {
    const port = (srv.address() as { port: number }).port;
    const client = new Minipay(sk, { baseUrl: `http://127.0.0.1:${port}`, maxBackoffMs: 3_600_000 });
    await assert.rejects(client.balance.retrieve({ signal: ctl.signal }), /caller gave up/);
    assert.equal(requests, 1);
  } finally {
    srv.close();
  }
});

test("webhooks: register an endpoint, pay, receive a delivery that verifies, find it in the event log", async () => {
  const { createServer } = await import("node:http");
  const client = new Minipay(sk, { baseUrl: mp.url });
  const deliveries: { headers: Record<string, any>; body: string }[] = [];
  const receiver = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
    res.writeHead(204).end();
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  try {
    const port = (receiver.address() as { port: number }).port;
    const endpoint = await client.webhookEndpoints.create({ url: `http://127.0.0.1:${port}/hook`, enabled_events: ["checkout.session.completed"] });
    assert.match(endpoint.secret!, /^whsec_/);
    assert.equal((await client.webhookEndpoints.list()).data.some((e) => e.id === endpoint.id), true);

    const session = await client.checkout.sessions.create({ amount: "8.88", currency: "CNY", option: "tip" });
    await mp.call("POST", "/v1/wallets/usr_hook/topups", mp.host, { amount: "10.00", currency: "CNY" });
    const paid = await mp.call("POST", `/v1/checkout/sessions/${session.id}/confirm`, mp.host, { user_id: "usr_hook", client_secret: session.client_secret });
    assert.equal(paid.status, 200);

    const deadline = Date.now() + 30_000;
    while (deliveries.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(deliveries.length > 0, "no webhook delivered");
    const d = deliveries[0];
    const event = verifyWebhook<{ id: string; status: string; amount_total: string }>(endpoint.secret!, d.headers, d.body);
    assert.equal(event.type, "checkout.session.completed");
    assert.equal(event.data.object.id, session.id);
    assert.equal(event.data.object.amount_total, "8.88");
    assert.throws(() => verifyWebhook(endpoint.secret!, d.headers, d.body.replace("8.88", "9.88")), WebhookVerificationError);

    const events = await client.events.list({ type: "checkout.session.completed", limit: 100 });
    const logged = events.data.find((e) => e.id === event.id);
    assert.ok(logged);
    assert.deepEqual(await client.events.retrieve(event.id), logged);
    await client.webhookEndpoints.del(endpoint.id);
  } finally {
    receiver.close();
  }
});

test("the demo's SDK bundle is this build of src/browser.ts", async () => {
  const { readFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const built = readFileSync(join(import.meta.dirname, "../dist/browser.js"), "utf8");
  const shipped = readFileSync(join(repoRoot, "demo/static/minipay.js"), "utf8");
  assert.equal(shipped, built, "demo/static/minipay.js is stale: run npm run bundle in sdk/js and commit it");
});

test("the host's client funds a wallet, reads it and confirms a session", async () => {
  const client = new Minipay(sk, { baseUrl: mp.url });
  const host = new MinipayHost(mp.host, { baseUrl: mp.url });
  const session = await client.checkout.sessions.create({ amount: "7.00", currency: "CNY", option: "goods" });
  const funded = await host.wallets.topUp("usr_host_js", { amount: "10.00", currency: "CNY" }, { idempotencyKey: "topup-host-js" });
  assert.deepEqual(funded.balances, [{ currency: "CNY", available: "10.00", held: "0.00" }]);
  const again = await host.wallets.topUp("usr_host_js", { amount: "10.00", currency: "CNY" }, { idempotencyKey: "topup-host-js" });
  assert.equal(again.balances[0].available, "10.00", "a retried top-up lands once");
  const paid = await host.checkout.sessions.confirm(session.id, { user_id: "usr_host_js", client_secret: session.client_secret! });
  assert.equal(paid.status, "complete");
  assert.equal((await host.wallets.retrieve("usr_host_js")).balances[0].available, "3.00");
  await assert.rejects(host.checkout.sessions.confirm(session.id, { user_id: "usr_host_js", client_secret: "wrong" }), MinipayError);
  assert.throws(() => new MinipayHost(sk), TypeError);
  assert.throws(() => new Minipay(mp.host), TypeError);
});
