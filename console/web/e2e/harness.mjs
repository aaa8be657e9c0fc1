// The real minipay for the browser test: the binary built from this
// checkout, "minipay serve" on a fresh PostgreSQL database dropped at the end.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dirname, "../../..");

/** Starts "minipay serve" with env on a fresh database; returns its URL, keys, an API caller and stop. */
export async function startServe(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), "minipay-console-e2e-"));
  const bin = join(dir, "minipay");
  execFileSync("go", ["build", "-o", bin, "./cmd/minipay"], { cwd: repoRoot, stdio: "inherit" });
  const base = new URL(process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable");
  const name = "minipay_console_e2e_" + randomBytes(6).toString("hex");
  const db = new URL(base);
  db.pathname = "/" + name;
  const maintenance = new URL(base);
  maintenance.pathname = "/postgres";
  const admin = "admin_e2e_" + randomBytes(12).toString("hex");
  const host = "host_e2e_" + randomBytes(12).toString("hex");
  const catalog = join(dir, "catalog.json");
  // The default catalog, except that money matures at once, so the test
  // can settle what it just paid.
  const option = (name, bps, refundable) => ({
    name, fee_bps: bps, min_amount: "0.01", max_amount: "100000.00", currencies: ["CNY"], refundable,
    refund_window: refundable ? "720h" : "0s", holding_period: "0s", recurring: name !== "virtual_goods",
    effective_from: "2020-01-01T00:00:00Z",
  });
  writeFileSync(catalog, JSON.stringify({ options: [option("goods", 60, true), option("virtual_goods", 3000, true), option("tip", 0, false)] }));
  const proc = spawn(bin, ["serve"], {
    env: {
      ...process.env, DATABASE_URL: db.toString(), MINIPAY_ADDR: "127.0.0.1:0", MINIPAY_ADMIN_KEY: admin,
      MINIPAY_HOST_KEY: host, MINIPAY_SECRET: "console-e2e-secret", MINIPAY_WEBHOOK_ALLOW_PRIVATE: "true",
      MINIPAY_CATALOG: catalog, MINIPAY_SETTLEMENT_SCHEDULE: "off", MINIPAY_SETTLEMENT_TZ: "UTC", ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr.on("data", (b) => (err += b));
  proc.stdout.on("data", () => {});
  const exited = new Promise((r) => proc.once("exit", r));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(t);
    }
    try {
      execFileSync("psql", [maintenance.toString(), "-qc", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], { stdio: "ignore" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const deadline = Date.now() + 90_000;
  let m;
  while (!(m = err.match(/"msg":"listening","addr":"([^"]+)"/))) {
    if (proc.exitCode !== null) throw new Error(`minipay serve exited with ${proc.exitCode}:\n${err}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`minipay serve never got ready:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const url = "http://" + m[1];
  const call = async (method, path, key, body) => {
    const res = await fetch(url + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, body: res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : undefined };
  };
  return { url, admin, host, call, stop, log: () => err };
}
