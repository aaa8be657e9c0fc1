import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { test } from "node:test";
import { verifyWebhook, WebhookVerificationError } from "../src/server.ts";

// The example of the Standard Webhooks specification.
const spec = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  ts: "1614265330",
  body: '{"test": 2432232314}',
  sig: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};
const at = new Date(Number(spec.ts) * 1000);

test("accepts the specification's example", () => {
  const headers = { "webhook-id": spec.id, "webhook-timestamp": spec.ts, "webhook-signature": spec.sig };
  assert.deepEqual(verifyWebhook(spec.secret, headers, spec.body, { now: at }), { test: 2432232314 });
  // fetch-style Headers, and a signature list with another key's signature first (rotation)
  const h = new Headers({ ...headers, "webhook-signature": "v1,bm90IGl0 " + spec.sig });
  assert.deepEqual(verifyWebhook(spec.secret, h, Buffer.from(spec.body), { now: at }), { test: 2432232314 });
});

test("refuses what does not verify", () => {
  const ok = { "webhook-id": spec.id, "webhook-timestamp": spec.ts, "webhook-signature": spec.sig };
  const other = "whsec_" + randomBytes(24).toString("base64");
  const cases: [string, () => unknown][] = [
    ["body changed", () => verifyWebhook(spec.secret, ok, spec.body.replace("2", "3"), { now: at })],
    ["body re-serialized", () => verifyWebhook(spec.secret, ok, JSON.stringify(JSON.parse(spec.body)), { now: at })],
    ["id changed", () => verifyWebhook(spec.secret, { ...ok, "webhook-id": "msg_other" }, spec.body, { now: at })],
    ["other secret", () => verifyWebhook(other, ok, spec.body, { now: at })],
    ["too old", () => verifyWebhook(spec.secret, ok, spec.body, { now: new Date(at.getTime() + 301_000) })],
    ["from the future", () => verifyWebhook(spec.secret, ok, spec.body, { now: new Date(at.getTime() - 301_000) })],
    ["no signature header", () => verifyWebhook(spec.secret, { ...ok, "webhook-signature": undefined }, spec.body, { now: at })],
    ["unknown version", () => verifyWebhook(spec.secret, { ...ok, "webhook-signature": spec.sig.replace("v1,", "v2,") }, spec.body, { now: at })],
    ["truncated signature", () => verifyWebhook(spec.secret, { ...ok, "webhook-signature": spec.sig.slice(0, 20) }, spec.body, { now: at })],
    ["timestamp not a number", () => verifyWebhook(spec.secret, { ...ok, "webhook-timestamp": "1614265330.5" }, spec.body, { now: at })],
    ["secret without prefix", () => verifyWebhook(spec.secret.slice(6), ok, spec.body, { now: at })],
  ];
  for (const [name, fn] of cases) {
    assert.throws(fn, WebhookVerificationError, name);
  }
  // Within the tolerance either way is fine; the tolerance is adjustable.
  verifyWebhook(spec.secret, ok, spec.body, { now: new Date(at.getTime() + 299_000) });
  assert.throws(() => verifyWebhook(spec.secret, ok, spec.body, { now: new Date(at.getTime() + 20_000), toleranceSeconds: 10 }), WebhookVerificationError);
});

test("verifies a signature made by an independent HMAC over id.timestamp.body", () => {
  const key = randomBytes(32);
  const secret = "whsec_" + key.toString("base64");
  const ts = String(Math.floor(Date.now() / 1000));
  const body = JSON.stringify({ id: "evt_1", type: "checkout.session.completed", data: { object: { id: "cs_1" } } });
  const sig = createHmac("sha256", key).update(`evt_1.${ts}.${body}`).digest("base64");
  const ev = verifyWebhook(secret, { "Webhook-Id": "evt_1", "Webhook-Timestamp": ts, "Webhook-Signature": `v1,${sig}` }, body);
  assert.equal(ev.type, "checkout.session.completed");
});
