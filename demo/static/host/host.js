// The host page: loads the mini-app in a frame and serves its payment
// requests with the SDK's host side of the bridge. The host key never
// reaches this page; /demo/api/* on the page's own server holds it.
import { serveHostBridge, paymentErrorCodeOf, subscriptionErrorCodeOf, PaymentError } from "./minipay.js";

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
$("who").onclick = () => showMemberships();
$("memberships-close").onclick = () => ($("memberships").hidden = true);

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
  // The user's menu: their memberships, where they cancel one.
  $("who").textContent = `${(u ? u.name : user).split(" ")[0]} · Memberships`;
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

// The plan of a subscription as the host key reads it: expanded in
// "plan", or (when "plan" is only the id) in the subscription's own fields.
function planOf(sub) {
  if (sub.plan && typeof sub.plan === "object") return sub.plan;
  return {
    id: sub.plan, name: sub.plan_name ?? sub.name, amount: sub.amount, currency: sub.currency,
    interval: sub.interval, interval_count: sub.interval_count ?? 1, trial_period_days: sub.trial_period_days ?? 0,
  };
}

// "month", "3 months", "week" …
function every(plan) {
  const n = plan.interval_count || 1;
  return n === 1 ? plan.interval : `${n} ${plan.interval}s`;
}

const dateFormat = new Intl.DateTimeFormat("en", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
const day = (iso) => (iso ? dateFormat.format(new Date(iso)) : "");

// The agreement sheet: resolves "sign" or "decline". The subscription is
// the host key's read of it (through this page's server): the app's name
// and the plan, what the user agrees to be charged and how often.
function agreement(sub) {
  const plan = planOf(sub);
  const price = `${plan.amount} ${plan.currency}`;
  const trial = plan.trial_period_days || 0;
  $("agreement-app").textContent = sub.app_name;
  $("agreement-plan").textContent = plan.name;
  $("agreement-amount").textContent = `${price} / ${every(plan)}`;
  $("agreement-trial").textContent = trial > 0 ? `${trial} days free` : "none";
  $("agreement-first").textContent = trial > 0 ? `after the trial, ${price}` : `today, ${price}`;
  $("agreement-fine").textContent = `${sub.app_name} will be paid ${price} from your wallet every ${every(plan)} ` +
    "until you cancel. Cancel any time in Memberships, at the top: you keep what you paid for until the period ends.";
  $("agreement-error").hidden = true;
  $("agreement-sign").disabled = false;
  $("agreement").hidden = false;
  walletText().then((t) => ($("agreement-balance").textContent = `balance ${t}`));
  return new Promise((resolve) => {
    $("agreement-sign").onclick = () => resolve("sign");
    $("agreement-decline").onclick = () => resolve("decline");
  });
}

// What a membership's state means to its user.
function membershipState(sub) {
  if (sub.status === "canceled") return `ended ${day(sub.canceled_at)}`;
  if (sub.cancel_at_period_end) return `canceled · yours until ${day(sub.current_period_end)}`;
  if (sub.status === "trialing") return `free trial until ${day(sub.trial_end)}`;
  if (sub.status === "past_due") return "payment failed · retrying";
  return `${sub.status} · renews ${day(sub.current_period_end)}`;
}

// The user's memberships, each with a Cancel while it still renews.
async function showMemberships() {
  const res = await fetch(`api/users/${encodeURIComponent(user)}/subscriptions`);
  const { data } = res.ok ? await res.json() : { data: [] };
  const items = data.map((sub) => {
    const plan = planOf(sub);
    const li = document.createElement("li");
    li.dataset.testid = "membership";
    li.dataset.subscription = sub.id;
    const head = Object.assign(document.createElement("div"), { className: "m-head" });
    head.append(Object.assign(document.createElement("span"), { textContent: plan.name }),
      Object.assign(document.createElement("span"), { className: "m-price", textContent: `${plan.amount} ${plan.currency} / ${every(plan)}` }));
    const state = Object.assign(document.createElement("div"), { className: "m-state", textContent: `${sub.app_name} · ${membershipState(sub)}` });
    state.dataset.testid = "membership-state";
    li.append(head, state);
    if (sub.status !== "canceled" && !sub.cancel_at_period_end) {
      const b = Object.assign(document.createElement("button"), { className: "secondary", textContent: "Cancel membership" });
      b.dataset.testid = "membership-cancel";
      b.onclick = () => cancelMembership(sub, b);
      li.append(b);
    }
    return li;
  });
  if (!items.length) items.push(Object.assign(document.createElement("li"), { className: "none", textContent: "No memberships yet." }));
  $("memberships-list").replaceChildren(...items);
  $("memberships").hidden = false;
}

// The user's cancel: at the end of the period already paid for.
async function cancelMembership(sub, button) {
  button.disabled = true;
  const res = await fetch(`api/subscriptions/${encodeURIComponent(sub.id)}/cancel`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": `cancel-${sub.id}-${user}` },
    body: JSON.stringify({ user_id: user }),
  }).catch(() => null);
  const body = res ? await res.json() : { error: { message: "the host's server could not be reached" } };
  log(res?.ok ? "out" : "err", res?.ok ? `cancel ${sub.id}: ends ${day(body.current_period_end)}` : `cancel ${sub.id}: ${body.error?.message}`);
  await showMemberships();
}

serveHostBridge({
  frame: () => $("miniapp").contentWindow,
  appOrigin,
  onSubscriptionRequest: (req) => onSubscriptionRequest(req),
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

// A subscription request from the mini-app: the agreement sheet, then, if
// the user agrees, this page's server signs with the host key. Only the
// outcome's code crosses to the mini-app on failure.
async function onSubscriptionRequest({ subscriptionId, clientSecret, requestId }) {
  log("in", `← subscription_request ${requestId} ${subscriptionId}`);
  try {
    const res = await fetch(`api/subscriptions/${encodeURIComponent(subscriptionId)}`);
    if (!res.ok) throw new PaymentError("invalid_request", "the host cannot find this subscription");
    const sub = await res.json();
    if (sub.status === "incomplete_expired" || sub.status === "canceled") {
      throw new PaymentError("expired", `the subscription is ${sub.status}`, "subscription_" + sub.status);
    }
    if (sub.status !== "incomplete") throw new PaymentError("invalid_request", `the subscription is already ${sub.status}`);
    const choice = await agreement(sub);
    if (choice === "decline") throw new PaymentError("canceled", "the user declined the subscription");
    $("agreement-sign").disabled = true;
    const signed = await fetch(`api/subscriptions/${encodeURIComponent(subscriptionId)}/sign`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": requestId },
      body: JSON.stringify({ user_id: user, client_secret: clientSecret }),
    }).catch(() => null);
    if (!signed) throw new PaymentError("network", "the host's server could not be reached");
    const body = await signed.json();
    if (!signed.ok) {
      const code = body.error?.code || "";
      const err = new PaymentError(code === "network" ? "network" : subscriptionErrorCodeOf(code), body.error?.message || "signing failed", code);
      if (err.code === "insufficient_funds") {
        $("agreement-error").textContent = "Not enough money in your wallet for the first payment.";
        $("agreement-error").hidden = false;
        await sleep(1200);
      }
      throw err;
    }
    log("out", `→ subscription_result ${requestId} ok ${body.id} ${body.status}`);
    // The mini-app gets the subscription without what the host alone
    // reads (the app's name, the expanded plan).
    const { app_name: _name, ...subscription } = body;
    return { ok: true, subscription: { ...subscription, plan: planOf(body).id ?? body.plan } };
  } catch (err) {
    log("err", `→ subscription_result ${requestId} ${err.code || "host_error"}: ${err.message}`);
    throw err;
  } finally {
    $("agreement").hidden = true;
    showUser();
  }
}

$("framed").textContent = appURL.href;
$("miniapp").src = appURL.href;
await showUser();
document.body.dataset.ready = "true";
