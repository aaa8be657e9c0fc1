/**
 * The mini-app side and the host side of the payment bridge.
 *
 * A mini-app runs in a frame of the host (the super-app's page or web
 * view). It never holds a secret key: its backend creates a checkout
 * session and hands the front end the session id and client secret; the
 * front end asks the host to pay with requestPayment; the host shows its
 * payment sheet and, if the user agrees, its own server confirms the
 * session with the host key.
 *
 * The bridge is window.postMessage between the two frames. Every message
 * is an object with `minipay: 1` (the protocol version), a `type` and the
 * `id` of the request it belongs to:
 *
 *   mini-app → host  {minipay: 1, type: "minipay:payment_request", id, sessionId, clientSecret}
 *   host → mini-app  {minipay: 1, type: "minipay:payment_ack", id}
 *                    sent at once: the sheet is showing (the user may take a while)
 *   host → mini-app  {minipay: 1, type: "minipay:payment_result", id, ok: true, session}
 *                    {minipay: 1, type: "minipay:payment_result", id, ok: false,
 *                     error: {code}}
 *
 * A subscription (a recurring debit the user agrees to once) is signed the
 * same way, with requestSubscription: the host shows its agreement sheet
 * and, if the user agrees, its server signs the subscription with the host
 * key.
 *
 *   mini-app → host  {minipay: 1, type: "minipay:subscription_request", id, subscriptionId, clientSecret}
 *   host → mini-app  {minipay: 1, type: "minipay:subscription_ack", id}
 *   host → mini-app  {minipay: 1, type: "minipay:subscription_result", id, ok: true, subscription}
 *                    {minipay: 1, type: "minipay:subscription_result", id, ok: false,
 *                     error: {code}}
 *
 * Both sides post only to the other's exact origin (never "*") and drop
 * messages from any other origin or window. Each side is told the other's
 * origin: the mini-app never trusts whichever page happens to frame it,
 * since a hostile framer would get the client secret and could answer
 * "paid". A failure crosses the bridge as its code only: the host's error
 * messages are written for the host and may name its users. The mini-app
 * rejects with code "network" when no ack arrives within ackTimeoutMs, and
 * with "timeout" when no result arrives within timeoutMs.
 *
 * What the bridge says is a user interface hint, never proof of payment:
 * a mini-app fulfils an order only on the checkout.session.completed
 * webhook (a membership on subscription.activated), or after its backend
 * reads the session (the subscription) with its secret key.
 *
 * In a native WebView there is no parent frame: the host injects
 * `window.minipayHost` with `postMessage(json: string)`, and requestPayment
 * sends the same messages, as JSON, through it; the host answers each by
 * calling `window.minipayHostReply(message)` in the page (docs/hosts.md).
 * Only the host app can put those in the mini-app's own window (a page
 * that frames it cannot reach across origins), so no origin is needed
 * there.
 *
 * This file imports nothing, so it also ships as one plain ES module for
 * pages without a bundler.
 */

/** The protocol version carried in every message. */
export const BRIDGE_VERSION = 1;

/** Message types of the bridge. */
export const MessageType = {
  PaymentRequest: "minipay:payment_request",
  PaymentAck: "minipay:payment_ack",
  PaymentResult: "minipay:payment_result",
  SubscriptionRequest: "minipay:subscription_request",
  SubscriptionAck: "minipay:subscription_ack",
  SubscriptionResult: "minipay:subscription_result",
} as const;

/**
 * Why a payment (or a subscription's signing) did not happen.
 * - canceled: the user closed the payment sheet (declined the agreement)
 * - expired: the session expired (or was canceled by the app) before it was
 *   paid; the subscription expired unsigned or was canceled
 * - insufficient_funds: the user's wallet cannot pay; the session stays open
 *   (the subscription stays incomplete, and may be signed again)
 * - network: the host or minipay could not be reached
 * - timeout: no answer within timeoutMs
 * - invalid_request: bad arguments, or the session is not payable (already
 *   paid, wrong secret); the subscription is already signed, or the secret is wrong
 * - host_error: anything else the host reports
 */
export type PaymentErrorCode =
  | "canceled"
  | "expired"
  | "insufficient_funds"
  | "network"
  | "timeout"
  | "invalid_request"
  | "host_error";

/** A payment that did not happen. Branch on `code`. */
export class PaymentError extends Error {
  override readonly name = "PaymentError";
  constructor(
    readonly code: PaymentErrorCode,
    message: string,
    /**
     * The minipay API error code behind it (e.g. "session_expired"), when the
     * host builds the error; it stays on the host's side of the bridge.
     */
    readonly apiCode?: string,
  ) {
    super(message);
  }
}

/** Whether err is a PaymentError, optionally with the given code. */
export function isPaymentError(err: unknown, code?: PaymentErrorCode): err is PaymentError {
  return err instanceof PaymentError && (code === undefined || err.code === code);
}

/** The checkout session as the host reports it after payment (no secrets). */
export interface PaidSession {
  id: string;
  status: string; // "complete"
  payment_status: string; // "paid"
  amount_total: string;
  currency: string;
  option: string;
  customer: string | null;
  client_reference_id: string | null;
  metadata: Record<string, string>;
  version: number;
  [field: string]: unknown;
}

export interface PaymentRequest {
  sessionId: string;
  clientSecret: string;
}

export interface RequestPaymentOptions {
  /**
   * The host page's exact origin, e.g. "https://host.example". Required in
   * a frame (not in a native WebView whose host injected
   * window.minipayHost): the client secret is posted only there, and
   * answers are taken only from there, never from whichever page frames
   * the mini-app. `minipay dev` serves it to its demo mini-app.
   */
  hostOrigin?: string;
  /** The window to talk to. Default: window.parent. */
  hostWindow?: Window;
  /** How long the host may take to acknowledge the request (default 5 s). */
  ackTimeoutMs?: number;
  /** How long the whole payment may take, the user's hesitation included (default 10 min). */
  timeoutMs?: number;
}

/**
 * The subscription as the host reports it after signing (no secrets):
 * "active" when the first period was charged, "trialing" when a trial
 * started.
 */
export interface SignedSubscription {
  id: string;
  status: string; // "active" or "trialing"
  plan: string | Record<string, unknown>;
  current_period_start: string | null;
  current_period_end: string | null;
  trial_end: string | null;
  cancel_at_period_end: boolean;
  latest_invoice: string | null;
  metadata: Record<string, string>;
  version: number;
  [field: string]: unknown;
}

export interface SubscriptionRequest {
  subscriptionId: string;
  clientSecret: string;
}

/** requestSubscription's options: requestPayment's, with the same defaults. */
export type RequestSubscriptionOptions = RequestPaymentOptions;

export interface SubscriptionRequestMessage {
  minipay: typeof BRIDGE_VERSION;
  type: typeof MessageType.SubscriptionRequest;
  id: string;
  subscriptionId: string;
  clientSecret: string;
}

export type SubscriptionResultMessage =
  | {
      minipay: typeof BRIDGE_VERSION;
      type: typeof MessageType.SubscriptionResult;
      id: string;
      ok: true;
      subscription: SignedSubscription;
    }
  | {
      minipay: typeof BRIDGE_VERSION;
      type: typeof MessageType.SubscriptionResult;
      id: string;
      ok: false;
      error: { code: PaymentErrorCode };
    };

export interface PaymentRequestMessage {
  minipay: typeof BRIDGE_VERSION;
  type: typeof MessageType.PaymentRequest;
  id: string;
  sessionId: string;
  clientSecret: string;
}

export type PaymentResultMessage =
  | { minipay: typeof BRIDGE_VERSION; type: typeof MessageType.PaymentResult; id: string; ok: true; session: PaidSession }
  | {
      minipay: typeof BRIDGE_VERSION;
      type: typeof MessageType.PaymentResult;
      id: string;
      ok: false;
      error: { code: PaymentErrorCode };
    };

const errorCodes: readonly PaymentErrorCode[] = [
  "canceled", "expired", "insufficient_funds", "network", "timeout", "invalid_request", "host_error",
];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function newRequestId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return "preq_" + c.randomUUID();
  return "preq_" + Date.now().toString(36) + Math.random().toString(36).slice(2);
}

/** What the mini-app shows for a failure, whatever the host's own message said. */
const errorMessages: Record<PaymentErrorCode, string> = {
  canceled: "the payment was canceled",
  expired: "the checkout session expired or was canceled",
  insufficient_funds: "the wallet does not have enough money",
  network: "the host or minipay could not be reached",
  timeout: "the payment took too long",
  invalid_request: "the payment request is not valid",
  host_error: "the host could not take the payment",
};

const subscriptionErrorMessages: Record<PaymentErrorCode, string> = {
  canceled: "the user declined the subscription",
  expired: "the subscription expired or was canceled before it was signed",
  insufficient_funds: "the wallet does not have enough money for the first period",
  network: "the host or minipay could not be reached",
  timeout: "the signing took too long",
  invalid_request: "the subscription request is not valid",
  host_error: "the host could not sign the subscription",
};

/** Whether s is an origin and nothing more ("https://host.example[:port]"). */
function isOrigin(s: unknown): s is string {
  if (typeof s !== "string") return false;
  try {
    const u = new URL(s);
    return (u.protocol === "https:" || u.protocol === "http:") && u.origin === s;
  } catch {
    return false;
  }
}

/** What a native host injects into its WebView (docs/hosts.md). */
export interface NativeHost {
  /** Takes one bridge message as a JSON string. */
  postMessage(message: string): void;
}

function nativeHost(): NativeHost | undefined {
  const h = (globalThis as { minipayHost?: unknown }).minipayHost;
  return isObject(h) && typeof h.postMessage === "function" ? (h as unknown as NativeHost) : undefined;
}

// Requests in flight through a native host, by id; the host's replies
// arrive through globalThis.minipayHostReply.
const nativePending = new Map<string, (m: Record<string, unknown>) => void>();

function installNativeReply(): void {
  (globalThis as { minipayHostReply?: unknown }).minipayHostReply = (reply: unknown) => {
    let m = reply;
    if (typeof m === "string") {
      try {
        m = JSON.parse(m);
      } catch {
        return;
      }
    }
    if (isObject(m) && typeof m.id === "string") nativePending.get(m.id)?.(m);
  };
}

/**
 * Asks the host to pay a checkout session. Resolves with the paid session;
 * rejects with a PaymentError. In a frame it talks to the parent page at
 * opts.hostOrigin; in a native WebView whose host injected
 * window.minipayHost, to that. The resolved session tells the user
 * interface what happened; fulfil orders on the webhook or a read by your
 * backend.
 */
export function requestPayment(req: PaymentRequest, opts: RequestPaymentOptions = {}): Promise<PaidSession> {
  if (!req || typeof req.sessionId !== "string" || !req.sessionId.startsWith("cs_")) {
    return Promise.reject(new PaymentError("invalid_request", "sessionId must be a checkout session id (cs_…)"));
  }
  return bridgeRequest<PaidSession>(
    {
      request: MessageType.PaymentRequest,
      ack: MessageType.PaymentAck,
      result: MessageType.PaymentResult,
      field: "session",
      what: "payment",
      messages: errorMessages,
    },
    { sessionId: req.sessionId, clientSecret: req.clientSecret },
    opts,
  );
}

/**
 * Asks the host to have the user sign a subscription: the host shows its
 * agreement sheet (the plan, the amount per period, any trial) and, if the
 * user agrees, its server signs the subscription with the host key, which
 * charges the first period at once unless the plan has a trial. Resolves
 * with the signed subscription ("active" or "trialing"); rejects with a
 * PaymentError ("canceled" when the user declines, "insufficient_funds"
 * when the wallet cannot pay the first period: the subscription stays
 * incomplete and may be signed again). The bridge, the origins and the
 * options are requestPayment's. Grant the membership on the
 * subscription.activated webhook or a read by your backend, not on this.
 */
export function requestSubscription(
  req: SubscriptionRequest,
  opts: RequestSubscriptionOptions = {},
): Promise<SignedSubscription> {
  if (!req || typeof req.subscriptionId !== "string" || !req.subscriptionId.startsWith("sub_")) {
    return Promise.reject(new PaymentError("invalid_request", "subscriptionId must be a subscription id (sub_…)"));
  }
  return bridgeRequest<SignedSubscription>(
    {
      request: MessageType.SubscriptionRequest,
      ack: MessageType.SubscriptionAck,
      result: MessageType.SubscriptionResult,
      field: "subscription",
      what: "subscription",
      messages: subscriptionErrorMessages,
    },
    { subscriptionId: req.subscriptionId, clientSecret: req.clientSecret },
    opts,
  );
}

/** One kind of request over the bridge: its message types and words. */
interface RequestKind {
  request: string;
  ack: string;
  result: string;
  /** The result's field that carries the object ("session", "subscription"). */
  field: string;
  /** For error messages: "payment", "subscription". */
  what: string;
  messages: Record<PaymentErrorCode, string>;
}

/**
 * Sends one request to the host (its frame or its native bridge) and
 * waits for the ack and the result: what requestPayment and
 * requestSubscription share.
 */
function bridgeRequest<T>(
  kind: RequestKind,
  fields: Record<string, string> & { clientSecret: string },
  opts: RequestPaymentOptions,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (typeof fields.clientSecret !== "string" || fields.clientSecret === "") {
      reject(new PaymentError("invalid_request", "clientSecret is required"));
      return;
    }
    const native = opts.hostWindow === undefined ? nativeHost() : undefined;
    const host = opts.hostWindow ?? globalThis.parent;
    const hostOrigin = opts.hostOrigin;
    if (!native && !isOrigin(hostOrigin)) {
      reject(new PaymentError("invalid_request", 'hostOrigin is required: the host page\'s exact origin, e.g. "https://host.example"'));
      return;
    }
    if (!native && (!host || host === (globalThis as unknown as Window))) {
      reject(new PaymentError("host_error", "not running inside a host page: no parent window"));
      return;
    }
    const id = newRequestId();
    const ackTimeoutMs = opts.ackTimeoutMs ?? 5_000;
    const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
    let acked = false;
    const done = (fn: () => void) => {
      globalThis.removeEventListener?.("message", onMessage);
      nativePending.delete(id);
      clearTimeout(ackTimer);
      clearTimeout(totalTimer);
      fn();
    };
    const ackTimer = setTimeout(() => {
      if (!acked) done(() => reject(new PaymentError("network", `the host did not answer the ${kind.what} request`)));
    }, ackTimeoutMs);
    const totalTimer = setTimeout(
      () => done(() => reject(new PaymentError("timeout", `no ${kind.what} result within ${timeoutMs} ms`))),
      timeoutMs,
    );
    function onMessage(ev: MessageEvent) {
      if (ev.origin !== hostOrigin || ev.source !== host) return;
      handle(ev.data);
    }
    function handle(m: unknown) {
      if (!isObject(m) || m.minipay !== BRIDGE_VERSION || m.id !== id) return;
      if (m.type === kind.ack) {
        acked = true;
        clearTimeout(ackTimer);
        return;
      }
      if (m.type !== kind.result) return;
      if (m.ok === true && isObject(m[kind.field])) {
        const object = m[kind.field] as T;
        done(() => resolve(object));
        return;
      }
      const e = isObject(m.error) ? m.error : {};
      const code = errorCodes.includes(e.code as PaymentErrorCode) ? (e.code as PaymentErrorCode) : "host_error";
      done(() => reject(new PaymentError(code, kind.messages[code])));
    }
    const msg = { minipay: BRIDGE_VERSION, type: kind.request, id, ...fields };
    if (native) {
      installNativeReply();
      nativePending.set(id, handle);
      try {
        native.postMessage(JSON.stringify(msg));
      } catch (err) {
        done(() => reject(new PaymentError("host_error", `the native host refused the request: ${String(err)}`)));
      }
      return;
    }
    globalThis.addEventListener("message", onMessage);
    try {
      host.postMessage(msg, hostOrigin!); // both checked above when not native
    } catch (err) {
      // An opaque or malformed host origin ("null") cannot be posted to.
      done(() => reject(new PaymentError("host_error", `cannot post to the host at ${hostOrigin}: ${String(err)}`)));
    }
  });
}

/**
 * What the host's handler decides: the paid session, or why not. Only the
 * code reaches the mini-app; message and apiCode are for the host's logs.
 */
export type HostOutcome =
  | { ok: true; session: PaidSession }
  | { ok: false; code: PaymentErrorCode; message: string; apiCode?: string };

/** What the host's subscription handler decides: the signed subscription, or why not. */
export type HostSubscriptionOutcome =
  | { ok: true; subscription: SignedSubscription }
  | { ok: false; code: PaymentErrorCode; message: string; apiCode?: string };

export interface HostBridgeOptions {
  /** The mini-app's frame. */
  frame: Window | (() => Window | null | undefined);
  /** The mini-app's origin: requests from any other origin are ignored. */
  appOrigin: string;
  /**
   * Shows the payment sheet and, if the user agrees, has the host's server
   * confirm the session. Runs for each request; never receives a key.
   */
  onPaymentRequest(req: PaymentRequest & { requestId: string }): Promise<HostOutcome>;
  /**
   * Shows the agreement sheet and, if the user agrees, has the host's
   * server sign the subscription. Runs for each subscription request; a
   * host without it answers every one with "host_error".
   */
  onSubscriptionRequest?(req: SubscriptionRequest & { requestId: string }): Promise<HostSubscriptionOutcome>;
}

/**
 * Serves payment and subscription requests from a mini-app frame on the
 * host page. Returns a function that stops serving.
 */
export function serveHostBridge(opts: HostBridgeOptions): () => void {
  const frame = () => (typeof opts.frame === "function" ? opts.frame() : opts.frame);
  const inFlight = new Set<string>();
  function reply(target: Window, m: Record<string, unknown>) {
    target.postMessage({ minipay: BRIDGE_VERSION, ...m }, opts.appOrigin);
  }
  // Runs one request's handler; a thrown PaymentError is its outcome, any
  // other throw is "host_error".
  async function outcome<O>(run: () => Promise<O>): Promise<O | { ok: false; code: PaymentErrorCode; message: string; apiCode?: string }> {
    try {
      return await run();
    } catch (err) {
      return isPaymentError(err)
        ? { ok: false, code: err.code, message: err.message, apiCode: err.apiCode }
        : { ok: false, code: "host_error", message: String(err) };
    }
  }
  async function onPayment(target: Window, m: Record<string, unknown>, id: string) {
    reply(target, { type: MessageType.PaymentAck, id });
    const out = await outcome(async () => {
      if (typeof m.sessionId !== "string" || typeof m.clientSecret !== "string") {
        throw new PaymentError("invalid_request", "sessionId and clientSecret must be strings");
      }
      return opts.onPaymentRequest({ sessionId: m.sessionId, clientSecret: m.clientSecret, requestId: id });
    });
    // Only the code crosses to the mini-app: the host's messages are for
    // the host and may carry its users' ids or minipay's internals.
    if (out.ok) reply(target, { type: MessageType.PaymentResult, id, ok: true, session: out.session });
    else reply(target, { type: MessageType.PaymentResult, id, ok: false, error: { code: out.code } });
  }
  async function onSubscription(target: Window, m: Record<string, unknown>, id: string) {
    reply(target, { type: MessageType.SubscriptionAck, id });
    const out = await outcome(async () => {
      if (typeof m.subscriptionId !== "string" || typeof m.clientSecret !== "string") {
        throw new PaymentError("invalid_request", "subscriptionId and clientSecret must be strings");
      }
      if (!opts.onSubscriptionRequest) throw new PaymentError("host_error", "this host does not sign subscriptions");
      return opts.onSubscriptionRequest({ subscriptionId: m.subscriptionId, clientSecret: m.clientSecret, requestId: id });
    });
    if (out.ok) reply(target, { type: MessageType.SubscriptionResult, id, ok: true, subscription: out.subscription });
    else reply(target, { type: MessageType.SubscriptionResult, id, ok: false, error: { code: out.code } });
  }
  async function onMessage(ev: MessageEvent) {
    const target = frame();
    if (!target || ev.source !== target || ev.origin !== opts.appOrigin) return;
    const m = ev.data;
    if (!isObject(m) || m.minipay !== BRIDGE_VERSION) return;
    if (m.type !== MessageType.PaymentRequest && m.type !== MessageType.SubscriptionRequest) return;
    if (typeof m.id !== "string" || inFlight.has(m.id)) return;
    const id = m.id;
    inFlight.add(id);
    try {
      if (m.type === MessageType.PaymentRequest) await onPayment(target, m, id);
      else await onSubscription(target, m, id);
    } finally {
      inFlight.delete(id);
    }
  }
  const listener = (ev: MessageEvent) => void onMessage(ev);
  globalThis.addEventListener("message", listener);
  return () => globalThis.removeEventListener("message", listener);
}

/**
 * Maps a minipay API error code from the confirm call to the bridge's
 * error code, for hosts building their outcome.
 */
export function paymentErrorCodeOf(apiCode: string): PaymentErrorCode {
  switch (apiCode) {
    case "insufficient_funds":
      return "insufficient_funds";
    case "session_expired":
    case "session_canceled":
      return "expired";
    case "session_not_open":
    case "client_secret_invalid":
    case "session_not_found":
    case "parameter_invalid":
    case "parameter_missing":
      return "invalid_request";
    default:
      return "host_error";
  }
}

/**
 * Maps a minipay API error code from the sign call
 * (POST /v1/subscriptions/{id}/sign) to the bridge's error code, for hosts
 * building their outcome.
 */
export function subscriptionErrorCodeOf(apiCode: string): PaymentErrorCode {
  switch (apiCode) {
    case "insufficient_funds":
      return "insufficient_funds";
    case "subscription_expired":
    case "subscription_canceled":
      return "expired";
    case "subscription_already_signed":
    case "client_secret_invalid":
    case "subscription_not_found":
    case "plan_inactive":
    case "parameter_invalid":
    case "parameter_missing":
      return "invalid_request";
    default:
      return "host_error";
  }
}
