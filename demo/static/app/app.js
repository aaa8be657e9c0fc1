// The demo mini-app. It holds no key: its backend (same origin) creates
// checkout sessions, and the SDK asks the host page to pay them.
import { requestPayment, requestSubscription, isPaymentError } from "./minipay.js";

const $ = (id) => document.getElementById(id);
const items = await (await fetch("/api/items")).json();
// The host page this mini-app pays through, as its backend configures it:
// the SDK posts the client secret to that origin only, never to whichever
// page frames the mini-app.
const config = await (await fetch("/api/config")).json();
const hostOrigin = `${location.protocol}//${location.hostname}:${config.host_port}`;

function status(cls, text) {
  $("status").className = "status " + cls;
  $("status").textContent = text;
}

const messages = {
  canceled: "Payment canceled. Nothing was charged.",
  insufficient_funds: "Not enough money in the wallet. Nothing was charged.",
  expired: "This order expired. Please try again.",
  network: "Could not reach the host. Check your connection.",
  timeout: "The payment took too long.",
};

async function buy(item, button) {
  button.disabled = true;
  status("wait", `Ordering ${item.name}…`);
  try {
    const res = await fetch("/api/checkout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ item: item.id }),
    });
    const order = await res.json();
    if (!res.ok) throw new Error(order.error?.message || "could not create the order");
    const session = await requestPayment({ sessionId: order.session_id, clientSecret: order.client_secret }, { hostOrigin });
    // This is what the user sees; the order is fulfilled by the backend on
    // the checkout.session.completed webhook, never on this answer.
    status("ok", `Paid ${session.amount_total} ${session.currency} for ${item.name} (${session.id}).`);
  } catch (err) {
    if (isPaymentError(err)) status("err", messages[err.code] || err.message);
    else status("err", String(err.message || err));
  } finally {
    button.disabled = false;
  }
}

// The membership: the backend makes the subscription (its plan and price
// are the backend's), the SDK asks the host to have the user sign it.
const club = await (await fetch("/api/membership")).json();
const per = (m) => (m.interval_count > 1 ? `${m.interval_count} ${m.interval}s` : m.interval);
$("club-what").append(club.name, Object.assign(document.createElement("small"), { textContent: club.description }));
$("club-price").textContent = `¥${club.amount} / ${per(club)}`;

const clubMessages = {
  canceled: "Maybe later. Nothing was charged.",
  insufficient_funds: "Not enough money in the wallet for the first month. Nothing was charged.",
  expired: "This offer expired. Please try again.",
  network: "Could not reach the host. Check your connection.",
  timeout: "Signing took too long.",
};

$("join").onclick = async () => {
  const button = $("join");
  button.disabled = true;
  status("wait", `Joining ${club.name}…`);
  try {
    const res = await fetch("/api/subscribe", { method: "POST" });
    const offer = await res.json();
    if (!res.ok) throw new Error(offer.error?.message || "could not create the subscription");
    const sub = await requestSubscription({ subscriptionId: offer.subscription_id, clientSecret: offer.client_secret }, { hostOrigin });
    // What the user sees; the backend grants the membership on the
    // subscription.activated webhook, never on this answer.
    const next = sub.current_period_end ? `, renews ${sub.current_period_end.slice(0, 10)}` : "";
    status("ok", `Welcome to ${club.name}: ${club.amount} ${club.currency} / ${per(club)}${next} (${sub.id}).`);
  } catch (err) {
    if (isPaymentError(err)) status("err", clubMessages[err.code] || err.message);
    else status("err", String(err.message || err));
  } finally {
    button.disabled = false;
  }
};

for (const item of items) {
  const li = document.createElement("li");
  li.innerHTML = `<span class="what"></span><span class="price"></span><button></button>`;
  li.querySelector(".what").append(item.name, Object.assign(document.createElement("small"), { textContent: item.description + " " }));
  li.querySelector("small").append(Object.assign(document.createElement("span"), { className: "opt", textContent: item.option }));
  li.querySelector(".price").textContent = `¥${item.amount}`;
  const b = li.querySelector("button");
  b.textContent = "Buy";
  b.dataset.testid = `buy-${item.id}`;
  b.onclick = () => buy(item, b);
  $("items").append(li);
}

async function poll() {
  try {
    const { data } = await (await fetch("/api/webhooks")).json();
    if (data.length) {
      $("webhooks").replaceChildren(...data.map((w) => {
        const li = document.createElement("li");
        li.textContent = `${w.type} · ${w.object}${w.amount ? ` · ${w.amount} ${w.currency}` : ""} ✓ signature verified`;
        return li;
      }));
    }
  } catch {
    // the backend restarting; try again
  }
  setTimeout(poll, 700);
}
poll();
document.body.dataset.ready = "true";
