// The package as users get it: "npm pack", installed into a scratch
// project from the tarball, then used from plain Node (both entry points)
// and type-checked from TypeScript. Fails loudly on anything missing.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const sdk = resolve(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "minipay-pack-"));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

try {
  run("npm", ["pack", "--silent", "--pack-destination", work], sdk);
  const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error("npm pack made no tarball");
  const files = run("tar", ["-tzf", join(work, tarball)], work).split("\n").filter(Boolean);
  for (const want of ["package/package.json", "package/README.md", "package/dist/index.js", "package/dist/browser.js",
    "package/dist/server.js", "package/dist/server.d.ts", "package/dist/browser.d.ts", "package/dist/api-types.d.ts"]) {
    if (!files.includes(want)) throw new Error(`the tarball lacks ${want}: ${files.join(", ")}`);
  }
  const stray = files.filter((f) => /^package\/(src|test|e2e|examples|scripts|node_modules)\//.test(f));
  if (stray.length) throw new Error(`the tarball carries what users do not need: ${stray.join(", ")}`);

  const app = join(work, "app");
  run("mkdir", ["-p", app], work);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
  run("npm", ["install", "--no-audit", "--no-fund", "--silent", join(work, tarball)], app);

  writeFileSync(join(app, "smoke.mjs"), `
import { createHmac } from "node:crypto";
import { Minipay, MinipayHost, MinipayNetworkError, verifyWebhook } from "@minipay/sdk/server";
import { requestPayment, requestSubscription, serveHostBridge } from "@minipay/sdk/browser";
import * as root from "@minipay/sdk";
import { createServer } from "node:net";

// A port nothing listens on: taken, then freed.
const srv = createServer().listen(0, "127.0.0.1");
await new Promise((r) => srv.once("listening", r));
const closed = "http://127.0.0.1:" + srv.address().port;
await new Promise((r) => srv.close(r));

if (typeof requestPayment !== "function" || typeof requestSubscription !== "function" || typeof serveHostBridge !== "function") throw new Error("browser entry");
if (root.verifyWebhook !== verifyWebhook || root.requestPayment !== requestPayment) throw new Error("the Node entry has both halves");

const secret = "whsec_" + Buffer.from("0123456789abcdef0123456789abcdef").toString("base64");
const body = JSON.stringify({ id: "evt_1", object: "event", type: "checkout.session.completed", created: "", data: { object: { id: "cs_1" } } });
const ts = String(Math.floor(Date.now() / 1000));
const sig = createHmac("sha256", Buffer.from(secret.slice(6), "base64")).update("evt_1." + ts + "." + body).digest("base64");
const ev = verifyWebhook(secret, { "webhook-id": "evt_1", "webhook-timestamp": ts, "webhook-signature": "v1," + sig }, body);
if (ev.data.object.id !== "cs_1") throw new Error("verifyWebhook");

for (const call of [() => new Minipay("sk_x", { baseUrl: closed, maxRetries: 0 }).balance.retrieve(),
                    () => new MinipayHost("host_x", { baseUrl: closed, maxRetries: 0 }).wallets.retrieve("usr_1")]) {
  try {
    await call();
    throw new Error("a call to a closed port succeeded");
  } catch (err) {
    if (!(err instanceof MinipayNetworkError) || !err.message.includes(closed + "/v1/") || !/ECONNREFUSED/.test(err.message)) {
      throw new Error("a network error should name the URL and the cause, got: " + err);
    }
  }
}
console.log("smoke ok");
`);
  const out = run("node", ["smoke.mjs"], app);
  if (!out.includes("smoke ok")) throw new Error(out);

  writeFileSync(join(app, "consumer.ts"), `
import { Minipay, MinipayHost, type Session, type HostSession, type Event, type Subscription, type HostSubscription } from "@minipay/sdk/server";
import { requestPayment, requestSubscription, type PaymentError } from "@minipay/sdk/browser";
export async function f(): Promise<string> {
  const m = new Minipay("sk_x");
  const s: Session = await m.checkout.sessions.create({ amount: "1.00", currency: "CNY", option: "goods" });
  const h: HostSession = await new MinipayHost("host_x").checkout.sessions.retrieve(s.id);
  const paid = await requestPayment({ sessionId: s.id, clientSecret: s.client_secret ?? "" });
  const sub: Subscription = await m.subscriptions.create({ plan: "plan_x" });
  const agreement: HostSubscription = await new MinipayHost("host_x").subscriptions.retrieve(sub.id);
  const signed = await requestSubscription({ subscriptionId: sub.id, clientSecret: sub.client_secret ?? "" });
  const e: Event<Session> | undefined = undefined;
  const err: PaymentError | undefined = undefined;
  return h.app_name + paid.status + agreement.app_name + signed.status + String(e) + String(err);
}
`);
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: "nodenext",
    moduleResolution: "nodenext", target: "es2022", lib: ["es2022", "dom"], types: [], skipLibCheck: false }, files: ["consumer.ts"] }));
  run("node", [join(sdk, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], app);
  console.log(`npm pack smoke test passed: ${tarball} installs, runs from Node and type-checks`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
