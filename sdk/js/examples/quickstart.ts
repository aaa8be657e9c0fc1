import { createServer } from "node:http";
import { Minipay, verifyWebhook, WebhookVerificationError } from "@minipay/sdk/server";

const minipay = new Minipay(process.env.MINIPAY_SECRET_KEY!, { baseUrl: process.env.MINIPAY_URL });
const webhookSecret = process.env.MINIPAY_WEBHOOK_SECRET!;

// 1. Receive webhooks: verify the raw body, then act once per event id.
const server = createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    const event = verifyWebhook<{ id: string }>(webhookSecret, req.headers, Buffer.concat(chunks));
    console.log(`received ${event.type} for ${event.data.object.id}`);
    res.writeHead(204).end();
  } catch (err) {
    if (!(err instanceof WebhookVerificationError)) throw err;
    res.writeHead(400).end(err.message);
  }
});
server.listen(Number(process.env.PORT ?? 4242), "127.0.0.1");

// 2. Create a checkout session for a new order; hand its id and client
//    secret to the mini-app, which calls requestPayment. The order id is
//    the idempotency key: retrying this order never charges twice.
const orderId = `node-order-${Date.now()}`;
const session = await minipay.checkout.sessions.create(
  { amount: "6.00", currency: "CNY", option: "virtual_goods", client_reference_id: orderId },
  { idempotencyKey: orderId },
);
console.log(`session ${session.id}, client secret ${session.client_secret}`);
