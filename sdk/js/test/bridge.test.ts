// The bridge's two halves, requestSubscription (and requestPayment) on the
// mini-app's side and serveHostBridge on the host's, talking through two
// fake windows in one process: each window's postMessage dispatches a
// MessageEvent on globalThis with the sender's origin and window, as a
// browser does. The browser test (e2e/) runs the same code in Chromium.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import {
  MessageType,
  PaymentError,
  isPaymentError,
  requestPayment,
  requestSubscription,
  serveHostBridge,
  subscriptionErrorCodeOf,
  type SignedSubscription,
} from "../src/browser.ts";

const hostOrigin = "https://host.example";
const appOrigin = "https://tea.miniapps.example";

const bus = new EventTarget();

/** A message event as a browser makes it (Node's MessageEvent takes only a MessagePort as source). */
class WindowMessage extends Event {
  constructor(readonly data: unknown, readonly origin: string, readonly source: unknown) {
    super("message");
  }
}
const windowMessage = (init: { data: unknown; origin: string; source: unknown }) => new WindowMessage(init.data, init.origin, init.source);
const g = globalThis as unknown as Record<string, unknown>;

/** A window whose postMessage delivers as if sent from `from` at `fromOrigin`. */
function fakeWindow(name: string) {
  const w = {
    name,
    posted: [] as { message: any; targetOrigin: string }[],
    // Set once both windows exist: who is on the other end.
    peer: undefined as any,
    peerOrigin: "",
    postMessage(message: unknown, targetOrigin: string) {
      if (targetOrigin === "*") throw new Error("posted to *");
      w.posted.push({ message, targetOrigin });
      // The browser drops a message whose target origin is not the
      // receiver's; both halves here share globalThis, so check it here.
      const receiverOrigin = w === host ? hostOrigin : appOrigin;
      if (targetOrigin !== receiverOrigin) return;
      const data = structuredClone(message);
      queueMicrotask(() => bus.dispatchEvent(windowMessage({ data, origin: w.peerOrigin, source: w.peer })));
    },
  };
  return w;
}

let host: ReturnType<typeof fakeWindow>;
let frame: ReturnType<typeof fakeWindow>;
let stop: (() => void) | undefined;

beforeEach(() => {
  host = fakeWindow("host");
  frame = fakeWindow("frame");
  // The mini-app posts to host: it arrives from the frame, at the app's origin.
  host.peer = frame;
  host.peerOrigin = appOrigin;
  frame.peer = host;
  frame.peerOrigin = hostOrigin;
  g.addEventListener = bus.addEventListener.bind(bus);
  g.removeEventListener = bus.removeEventListener.bind(bus);
});

afterEach(() => {
  stop?.();
  stop = undefined;
  delete g.addEventListener;
  delete g.removeEventListener;
  delete g.minipayHost;
  delete g.minipayHostReply;
});

const signed: SignedSubscription = {
  id: "sub_1",
  status: "active",
  plan: "plan_1",
  current_period_start: "2026-11-28T12:00:00Z",
  current_period_end: "2026-12-28T12:00:00Z",
  trial_end: null,
  cancel_at_period_end: false,
  latest_invoice: "in_1",
  metadata: {},
  version: 2,
};

test("requestSubscription: the host signs, the mini-app gets the subscription; the messages are the bridge's", async () => {
  const seen: unknown[] = [];
  stop = serveHostBridge({
    frame: () => frame as unknown as Window,
    appOrigin,
    onPaymentRequest: async () => assert.fail("a payment handler ran for a subscription"),
    async onSubscriptionRequest(req) {
      seen.push(req);
      return { ok: true, subscription: signed };
    },
  });
  const sub = await requestSubscription(
    { subscriptionId: "sub_1", clientSecret: "sub_1_secret_x" },
    { hostOrigin, hostWindow: host as unknown as Window },
  );
  assert.deepEqual(sub, signed);
  assert.equal(seen.length, 1);
  const req = seen[0] as { subscriptionId: string; clientSecret: string; requestId: string };
  assert.equal(req.subscriptionId, "sub_1");
  assert.equal(req.clientSecret, "sub_1_secret_x");
  // What crossed: one request to the host's origin; an ack and a result to the app's.
  assert.equal(host.posted.length, 1);
  assert.deepEqual(host.posted[0], {
    targetOrigin: hostOrigin,
    message: { minipay: 1, type: MessageType.SubscriptionRequest, id: req.requestId, subscriptionId: "sub_1", clientSecret: "sub_1_secret_x" },
  });
  assert.deepEqual(frame.posted.map((p) => [p.message.type, p.targetOrigin]), [
    ["minipay:subscription_ack", appOrigin],
    ["minipay:subscription_result", appOrigin],
  ]);
});

test("requestSubscription: a decline, insufficient funds and an expiry reach the mini-app as their codes only", async () => {
  const outcomes = [
    new PaymentError("canceled", "usr_secret declined", "declined_by_usr_secret"),
    new PaymentError("insufficient_funds", "wallet of usr_secret is short", "insufficient_funds"),
    new PaymentError("expired", "incomplete_expired", "subscription_expired"),
  ];
  let i = 0;
  stop = serveHostBridge({
    frame: () => frame as unknown as Window,
    appOrigin,
    onPaymentRequest: async () => assert.fail("payment"),
    async onSubscriptionRequest() {
      throw outcomes[i++];
    },
  });
  for (const want of ["canceled", "insufficient_funds", "expired"] as const) {
    await assert.rejects(
      requestSubscription({ subscriptionId: "sub_2", clientSecret: "s" }, { hostOrigin, hostWindow: host as unknown as Window }),
      (err: unknown) => isPaymentError(err, want) && !err.message.includes("usr_secret") && err.apiCode === undefined,
    );
  }
  const results = frame.posted.filter((p) => p.message.type === "minipay:subscription_result").map((p) => p.message);
  assert.deepEqual(results.map((r) => r.error), [{ code: "canceled" }, { code: "insufficient_funds" }, { code: "expired" }]);
  assert.ok(!JSON.stringify(frame.posted).includes("usr_secret"), JSON.stringify(frame.posted));
});

test("a host without a subscription handler answers host_error; a payment still works beside it", async () => {
  stop = serveHostBridge({
    frame: () => frame as unknown as Window,
    appOrigin,
    onPaymentRequest: async ({ sessionId }) => ({
      ok: true,
      session: { id: sessionId, status: "complete", payment_status: "paid", amount_total: "1.00", currency: "CNY",
        option: "tip", customer: null, client_reference_id: null, metadata: {}, version: 2 },
    }),
  });
  const opts = { hostOrigin, hostWindow: host as unknown as Window };
  await assert.rejects(requestSubscription({ subscriptionId: "sub_3", clientSecret: "s" }, opts), (e: unknown) => isPaymentError(e, "host_error"));
  const paid = await requestPayment({ sessionId: "cs_1", clientSecret: "c" }, opts);
  assert.equal(paid.id, "cs_1");
});

test("requestSubscription checks its arguments and the host's origin before posting anything", async () => {
  const win = host as unknown as Window;
  await assert.rejects(requestSubscription({ subscriptionId: "cs_1", clientSecret: "s" }, { hostOrigin, hostWindow: win }),
    (e: unknown) => isPaymentError(e, "invalid_request") && /sub_/.test((e as Error).message));
  await assert.rejects(requestSubscription({ subscriptionId: "sub_1", clientSecret: "" }, { hostOrigin, hostWindow: win }),
    (e: unknown) => isPaymentError(e, "invalid_request"));
  await assert.rejects(requestSubscription({ subscriptionId: "sub_1", clientSecret: "s" }, { hostOrigin: "*", hostWindow: win }),
    (e: unknown) => isPaymentError(e, "invalid_request") && /hostOrigin/.test((e as Error).message));
  assert.equal(host.posted.length, 0);
});

test("answers from another origin or window are ignored: a forged result does not sign", async () => {
  // No host bridge at all: only a forger, posting from the wrong origin,
  // then from the right origin but another window.
  const p = requestSubscription({ subscriptionId: "sub_4", clientSecret: "s" },
    { hostOrigin, hostWindow: host as unknown as Window, ackTimeoutMs: 200 });
  const id = host.posted[0].message.id;
  const forged = { minipay: 1, type: "minipay:subscription_result", id, ok: true, subscription: signed };
  bus.dispatchEvent(windowMessage({ data: forged, origin: "https://evil.example", source: host }));
  bus.dispatchEvent(windowMessage({ data: forged, origin: hostOrigin, source: {} }));
  // A payment result for the same id is not a subscription result either.
  bus.dispatchEvent(windowMessage({ data: { ...forged, type: "minipay:payment_result", session: signed }, origin: "https://evil.example", source: host }));
  await assert.rejects(p, (e: unknown) => isPaymentError(e, "network"));
});

test("the host ignores subscription requests from another origin and a repeated id in flight", async () => {
  let calls = 0;
  let release!: () => void;
  stop = serveHostBridge({
    frame: () => frame as unknown as Window,
    appOrigin,
    onPaymentRequest: async () => assert.fail("payment"),
    async onSubscriptionRequest() {
      calls++;
      await new Promise<void>((r) => (release = r));
      return { ok: true, subscription: signed };
    },
  });
  const msg = { minipay: 1, type: MessageType.SubscriptionRequest, id: "preq_x", subscriptionId: "sub_5", clientSecret: "s" };
  bus.dispatchEvent(windowMessage({ data: msg, origin: "https://evil.example", source: frame }));
  bus.dispatchEvent(windowMessage({ data: msg, origin: appOrigin, source: frame }));
  bus.dispatchEvent(windowMessage({ data: msg, origin: appOrigin, source: frame }));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(calls, 1);
  release();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(frame.posted.map((p) => p.message.type), ["minipay:subscription_ack", "minipay:subscription_result"]);
});

test("a native WebView host: requestSubscription sends the request as JSON through window.minipayHost", async () => {
  const sent: string[] = [];
  g.minipayHost = {
    postMessage(json: string) {
      sent.push(json);
      const m = JSON.parse(json);
      const reply = g.minipayHostReply as (m: unknown) => void;
      queueMicrotask(() => {
        reply(JSON.stringify({ minipay: 1, type: "minipay:subscription_ack", id: m.id }));
        reply({ minipay: 1, type: "minipay:subscription_result", id: m.id, ok: true, subscription: { ...signed, id: m.subscriptionId } });
      });
    },
  };
  const sub = await requestSubscription({ subscriptionId: "sub_6", clientSecret: "s" });
  assert.equal(sub.id, "sub_6");
  assert.equal(JSON.parse(sent[0]).type, "minipay:subscription_request");
});

test("subscriptionErrorCodeOf maps the sign call's errors", () => {
  assert.equal(subscriptionErrorCodeOf("insufficient_funds"), "insufficient_funds");
  assert.equal(subscriptionErrorCodeOf("client_secret_invalid"), "invalid_request");
  assert.equal(subscriptionErrorCodeOf("something_new"), "host_error");
});
