// Runs the Node program of docs/quickstart.md against a real minipay: it
// creates a session, the host pays it, and the program prints the webhook
// it received and verified.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Minipay } from "../src/server.ts";
import { startServe, type Serve } from "./harness.ts";

let mp: Serve;
before(async () => {
  mp = await startServe();
});
after(async () => {
  await mp?.stop();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test("the quickstart's Node backend receives its webhook", async () => {
  const sk = await mp.newApp();
  const port = await freePort();
  const endpoint = await new Minipay(sk, { baseUrl: mp.url }).webhookEndpoints.create({ url: `http://127.0.0.1:${port}/webhooks` });
  const proc = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../examples/quickstart.ts")], {
    cwd: join(import.meta.dirname, ".."),
    env: { ...process.env, MINIPAY_URL: mp.url, MINIPAY_SECRET_KEY: sk, MINIPAY_WEBHOOK_SECRET: endpoint.secret!, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout.on("data", (b) => (out += b));
  proc.stderr.on("data", (b) => (err += b));
  const waitFor = async (re: RegExp) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const m = out.match(re);
      if (m) return m;
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`no ${re} in the output:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    const [, id, secret] = await waitFor(/^session (cs_\S+), client secret (\S+)$/m);
    await mp.call("POST", "/v1/wallets/usr_q/topups", mp.host, { amount: "6.00", currency: "CNY" });
    const paid = await mp.call("POST", `/v1/checkout/sessions/${id}/confirm`, mp.host, { user_id: "usr_q", client_secret: secret });
    assert.equal(paid.status, 200);
    await waitFor(new RegExp(`^received checkout.session.completed for ${id}$`, "m"));
  } finally {
    proc.kill();
  }
});
