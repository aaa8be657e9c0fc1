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
 *                     error: {code, message}}
 *
 * Both sides post only to the other's exact origin (never "*") and drop
 * messages from any other origin or window. The mini-app rejects with
 * code "network" when no ack arrives within ackTimeoutMs, and with
 * "timeout" when no result arrives within timeoutMs.
 *
 * In a native WebView there is no parent frame: the host injects
 * `window.minipayHost` with `postMessage(json: string)`, and requestPayment
 * sends the same messages, as JSON, through it; the host answers each by
 * calling `window.minipayHostReply(message)` in the page (docs/hosts.md).
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
};
/** A payment that did not happen. Branch on `code`. */
export class PaymentError extends Error {
    code;
    apiCode;
    name = "PaymentError";
    constructor(code, message, 
    /** The minipay API error code behind it, when there is one (e.g. "session_expired"). */
    apiCode) {
        super(message);
        this.code = code;
        this.apiCode = apiCode;
    }
}
/** Whether err is a PaymentError, optionally with the given code. */
export function isPaymentError(err, code) {
    return err instanceof PaymentError && (code === undefined || err.code === code);
}
const errorCodes = [
    "canceled", "expired", "insufficient_funds", "network", "timeout", "invalid_request", "host_error",
];
function isObject(v) {
    return typeof v === "object" && v !== null;
}
function newRequestId() {
    const c = globalThis.crypto;
    if (c && typeof c.randomUUID === "function")
        return "preq_" + c.randomUUID();
    return "preq_" + Date.now().toString(36) + Math.random().toString(36).slice(2);
}
function defaultHostOrigin() {
    const loc = globalThis.location;
    if (loc?.ancestorOrigins && loc.ancestorOrigins.length > 0)
        return loc.ancestorOrigins[0];
    const ref = globalThis.document?.referrer;
    if (ref) {
        try {
            return new URL(ref).origin;
        }
        catch {
            return undefined;
        }
    }
    return undefined;
}
function nativeHost() {
    const h = globalThis.minipayHost;
    return isObject(h) && typeof h.postMessage === "function" ? h : undefined;
}
// Requests in flight through a native host, by id; the host's replies
// arrive through globalThis.minipayHostReply.
const nativePending = new Map();
function installNativeReply() {
    globalThis.minipayHostReply = (reply) => {
        let m = reply;
        if (typeof m === "string") {
            try {
                m = JSON.parse(m);
            }
            catch {
                return;
            }
        }
        if (isObject(m) && typeof m.id === "string")
            nativePending.get(m.id)?.(m);
    };
}
/**
 * Asks the host to pay a checkout session. Resolves with the paid session;
 * rejects with a PaymentError. In a frame it talks to the parent page; in a
 * native WebView whose host injected window.minipayHost, to that.
 */
export function requestPayment(req, opts = {}) {
    return new Promise((resolve, reject) => {
        if (!req || typeof req.sessionId !== "string" || !req.sessionId.startsWith("cs_")) {
            reject(new PaymentError("invalid_request", "sessionId must be a checkout session id (cs_…)"));
            return;
        }
        if (typeof req.clientSecret !== "string" || req.clientSecret === "") {
            reject(new PaymentError("invalid_request", "clientSecret is required"));
            return;
        }
        const native = opts.hostWindow === undefined && opts.hostOrigin === undefined ? nativeHost() : undefined;
        const host = opts.hostWindow ?? globalThis.parent;
        const hostOrigin = opts.hostOrigin ?? defaultHostOrigin();
        if (!native && (!host || host === globalThis || !hostOrigin)) {
            reject(new PaymentError("host_error", "not running inside a host page: no parent window or host origin"));
            return;
        }
        const id = newRequestId();
        const ackTimeoutMs = opts.ackTimeoutMs ?? 5_000;
        const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
        let acked = false;
        const done = (fn) => {
            globalThis.removeEventListener("message", onMessage);
            nativePending.delete(id);
            clearTimeout(ackTimer);
            clearTimeout(totalTimer);
            fn();
        };
        const ackTimer = setTimeout(() => {
            if (!acked)
                done(() => reject(new PaymentError("network", "the host did not answer the payment request")));
        }, ackTimeoutMs);
        const totalTimer = setTimeout(() => done(() => reject(new PaymentError("timeout", `no payment result within ${timeoutMs} ms`))), timeoutMs);
        function onMessage(ev) {
            if (ev.origin !== hostOrigin || ev.source !== host)
                return;
            handle(ev.data);
        }
        function handle(m) {
            if (!isObject(m) || m.minipay !== BRIDGE_VERSION || m.id !== id)
                return;
            if (m.type === MessageType.PaymentAck) {
                acked = true;
                clearTimeout(ackTimer);
                return;
            }
            if (m.type !== MessageType.PaymentResult)
                return;
            if (m.ok === true && isObject(m.session)) {
                const session = m.session;
                done(() => resolve(session));
                return;
            }
            const e = isObject(m.error) ? m.error : {};
            const code = errorCodes.includes(e.code) ? e.code : "host_error";
            const message = typeof e.message === "string" ? e.message : "the payment failed";
            const apiCode = typeof e.apiCode === "string" ? e.apiCode : undefined;
            done(() => reject(new PaymentError(code, message, apiCode)));
        }
        const msg = {
            minipay: BRIDGE_VERSION,
            type: MessageType.PaymentRequest,
            id,
            sessionId: req.sessionId,
            clientSecret: req.clientSecret,
        };
        if (native) {
            installNativeReply();
            nativePending.set(id, handle);
            try {
                native.postMessage(JSON.stringify(msg));
            }
            catch (err) {
                done(() => reject(new PaymentError("host_error", `the native host refused the request: ${String(err)}`)));
            }
            return;
        }
        globalThis.addEventListener("message", onMessage);
        try {
            host.postMessage(msg, hostOrigin); // both checked above when not native
        }
        catch (err) {
            // An opaque or malformed host origin ("null") cannot be posted to.
            done(() => reject(new PaymentError("host_error", `cannot post to the host at ${hostOrigin}: ${String(err)}`)));
        }
    });
}
/**
 * Serves payment requests from a mini-app frame on the host page. Returns
 * a function that stops serving.
 */
export function serveHostBridge(opts) {
    const frame = () => (typeof opts.frame === "function" ? opts.frame() : opts.frame);
    const inFlight = new Set();
    function reply(target, m) {
        target.postMessage({ minipay: BRIDGE_VERSION, ...m }, opts.appOrigin);
    }
    async function onMessage(ev) {
        const target = frame();
        if (!target || ev.source !== target || ev.origin !== opts.appOrigin)
            return;
        const m = ev.data;
        if (!isObject(m) || m.minipay !== BRIDGE_VERSION || m.type !== MessageType.PaymentRequest)
            return;
        if (typeof m.id !== "string" || inFlight.has(m.id))
            return;
        inFlight.add(m.id);
        reply(target, { type: MessageType.PaymentAck, id: m.id });
        let out;
        try {
            if (typeof m.sessionId !== "string" || typeof m.clientSecret !== "string") {
                throw new PaymentError("invalid_request", "sessionId and clientSecret must be strings");
            }
            out = await opts.onPaymentRequest({ sessionId: m.sessionId, clientSecret: m.clientSecret, requestId: m.id });
        }
        catch (err) {
            out = isPaymentError(err)
                ? { ok: false, code: err.code, message: err.message, apiCode: err.apiCode }
                : { ok: false, code: "host_error", message: String(err) };
        }
        finally {
            inFlight.delete(m.id);
        }
        if (out.ok)
            reply(target, { type: MessageType.PaymentResult, id: m.id, ok: true, session: out.session });
        else
            reply(target, {
                type: MessageType.PaymentResult,
                id: m.id,
                ok: false,
                error: { code: out.code, message: out.message, apiCode: out.apiCode },
            });
    }
    const listener = (ev) => void onMessage(ev);
    globalThis.addEventListener("message", listener);
    return () => globalThis.removeEventListener("message", listener);
}
/**
 * Maps a minipay API error code from the confirm call to the bridge's
 * error code, for hosts building their outcome.
 */
export function paymentErrorCodeOf(apiCode) {
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
