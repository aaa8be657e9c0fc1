// The host page: loads the mini-app in a frame and serves its payment
// requests with the SDK's host side of the bridge. The host key never
// reaches this page; /demo/api/* on the page's own server holds it.
import { serveHostBridge, paymentErrorCodeOf, PaymentError } from "./minipay.js";

const $ = (id) => document.getElementById(id);
const config = await (await fetch("api/config")).json();
// ?app=URL frames the developer's own mini-app (say a dev server on
// http://localhost:5173) instead of the demo one; the bridge then answers
// that origin only.
const appURL = framedApp(new URLSearchParams(location.search).get("app"));
const appOrigin = appURL.origin;

function framedApp(param) {
  if (param) {
    try {
      const u = new URL(param);
      if (u.protocol === "http:" || u.protocol === "https:") return u;
    } catch {}
    document.body.dataset.appError = `?app= must be an http(s) URL, not ${param}`;
  }
  return new URL(`${location.protocol}//${location.hostname}:${config.app_port}/`);
}
let user = new URLSearchParams(location.search).get("user") || config.users[0].id;

for (const u of config.users) {
  const o = new Option(`${u.name} (${u.id})`, u.id);
  $("user").add(o);
}
$("user").value = user;
$("user").onchange = () => { user = $("user").value; showUser(); };

function log(cls, text) {
  const li = document.createElement("li");
  li.className = cls;
  li.textContent = text;
  $("log").prepend(li);
}

async function walletText() {
  const res = await fetch(`api/wallets/${encodeURIComponent(user)}`);
  if (res.status === 404) return "0.00 CNY";
  const w = await res.json();
  const b = (w.balances || []).find((b) => b.currency === "CNY");
  return b ? `${b.available} CNY` : "0.00 CNY";
}

async function showUser() {
  const u = config.users.find((u) => u.id === user);
  $("who").textContent = u ? u.name : user;
  $("wallet").textContent = await walletText();
}

// The payment sheet: resolves "pay" or "cancel". The session is the host
// key's read of it (GET /v1/checkout/sessions/{id} through this page's
// server): the app's name, the amount and the items, no client secret.
function sheet(session) {
  $("sheet-app").textContent = session.app_name;
  $("sheet-lines").replaceChildren(...(session.line_items || []).map((it) => {
    const li = document.createElement("li");
    li.append(Object.assign(document.createElement("span"), { textContent: `${it.quantity} × ${it.name}` }),
      Object.assign(document.createElement("span"), { textContent: `${it.amount_total} ${session.currency}` }));
    return li;
  }));
  $("sheet-total").textContent = `${session.amount_total} ${session.currency}`;
  $("sheet-error").hidden = true;
  $("sheet-pay").disabled = false;
  $("sheet").hidden = false;
  walletText().then((t) => ($("sheet-balance").textContent = `balance ${t}`));
  return new Promise((resolve) => {
    $("sheet-pay").onclick = () => resolve("pay");
    $("sheet-cancel").onclick = () => resolve("cancel");
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

serveHostBridge({
  frame: () => $("miniapp").contentWindow,
  appOrigin,
  async onPaymentRequest({ sessionId, clientSecret, requestId }) {
    log("in", `← payment_request ${requestId} ${sessionId}`);
    try {
      const res = await fetch(`api/sessions/${encodeURIComponent(sessionId)}`);
      if (!res.ok) throw new PaymentError("invalid_request", "the host cannot find this checkout session");
      const session = await res.json();
      if (session.status === "expired" || session.status === "canceled") {
        throw new PaymentError("expired", `the checkout session is ${session.status}`, "session_" + session.status);
      }
      const choice = await sheet(session);
      if (choice === "cancel") throw new PaymentError("canceled", "the user canceled the payment");
      $("sheet-pay").disabled = true;
      const paid = await fetch(`api/sessions/${encodeURIComponent(sessionId)}/confirm`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": requestId },
        body: JSON.stringify({ user_id: user, client_secret: clientSecret }),
      }).catch(() => null);
      if (!paid) throw new PaymentError("network", "the host's server could not be reached");
      const body = await paid.json();
      if (!paid.ok) {
        const code = body.error?.code || "";
        const err = new PaymentError(code === "network" ? "network" : paymentErrorCodeOf(code), body.error?.message || "payment failed", code);
        if (err.code === "insufficient_funds") {
          $("sheet-error").textContent = "Not enough money in your wallet.";
          $("sheet-error").hidden = false;
          await sleep(1200);
        }
        throw err;
      }
      log("out", `→ payment_result ${requestId} ok ${body.id} ${body.amount_total} ${body.currency}`);
      return { ok: true, session: body };
    } catch (err) {
      log("err", `→ payment_result ${requestId} ${err.code || "host_error"}: ${err.message}`);
      throw err;
    } finally {
      $("sheet").hidden = true;
      showUser();
    }
  },
});

$("framed").textContent = appURL.href;
$("miniapp").src = appURL.href;
await showUser();
document.body.dataset.ready = "true";
