// Runs the Node program of docs/quickstart.md against a real minipay, as
// the page does: minipay listen forwards the app's events to it, signed
// with listen's local secret; the program creates a session, the host pays
// it, and the program prints the webhook it received and verified.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { minipayBinary, startBinary, startServe, type Serve } from "./harness.ts";

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

test("the quickstart's Node backend receives its webhook through minipay listen", async () => {
  const sk = await mp.newApp();
  const port = await freePort();
  const config = mkdtempSync(join(tmpdir(), "minipay-listen-"));
  const env = { MINIPAY_URL: mp.url, MINIPAY_SECRET_KEY: sk, XDG_CONFIG_HOME: config };
  const listen = await startBinary(["listen", "--forward-to", `http://127.0.0.1:${port}/webhooks`], env, /secret is (whsec_\S+)/);
  const secret = execFileSync(minipayBinary(), ["listen", "--print-secret"], { env: { ...process.env, ...env }, encoding: "utf8" }).trim();
  assert.equal(secret, listen.match[1]);
  const proc = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../examples/quickstart.ts")], {
    cwd: join(import.meta.dirname, ".."),
    env: { ...process.env, MINIPAY_URL: mp.url, MINIPAY_SECRET_KEY: sk, MINIPAY_WEBHOOK_SECRET: secret, PORT: String(port) },
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
    // listen prints its line once the backend has answered.
    for (const deadline = Date.now() + 30_000; !/checkout\.session\.completed +evt_\S+  -> 204 \(\d+ ms\)/.test(listen.stdout()); ) {
      assert.ok(Date.now() < deadline, `listen printed no forwarded event:\n${listen.stdout()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    proc.kill();
    await listen.stop();
    rmSync(config, { recursive: true, force: true });
  }
});
