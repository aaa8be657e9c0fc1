// A real minipay for the tests: the Go binary built from this checkout,
// run against its own fresh PostgreSQL database, dropped at the end.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dirname, "../../..");

let built: string | undefined;

/** Builds cmd/minipay once per test process. */
export function minipayBinary(): string {
  if (!built) {
    const dir = mkdtempSync(join(tmpdir(), "minipay-sdkjs-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    built = join(dir, "minipay");
    execFileSync("go", ["build", "-o", built, "./cmd/minipay"], { cwd: repoRoot, stdio: "inherit" });
  }
  return built;
}

/** A database URL on the test server (DATABASE_URL's, else the local one) with a new database name. */
export function freshDatabase(): { url: string; drop: () => void } {
  const base = new URL(process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable");
  const name = "minipay_sdkjs_" + randomBytes(6).toString("hex");
  const url = new URL(base);
  url.pathname = "/" + name;
  const maintenance = new URL(base);
  maintenance.pathname = "/postgres";
  return {
    url: url.toString(),
    drop: () => {
      execFileSync("psql", [maintenance.toString(), "-qc", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], { stdio: "ignore" });
    },
  };
}

export interface Running {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** Starts the binary with args and env, and waits until stdout or stderr matches ready. */
export async function startBinary(args: string[], env: Record<string, string>, ready: RegExp): Promise<Running & { match: RegExpMatchArray }> {
  const proc = spawn(minipayBinary(), args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (b) => (out += b));
  proc.stderr!.on("data", (b) => (err += b));
  const exited = new Promise<void>((res) => proc.once("exit", () => res()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(t);
    }
  };
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const m = out.match(ready) ?? err.match(ready);
    if (m) return { proc, match: m, stdout: () => out, stderr: () => err, stop };
    if (proc.exitCode !== null) throw new Error(`minipay ${args[0]} exited with ${proc.exitCode}:\n${err}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  await stop();
  throw new Error(`minipay ${args[0]} never got ready:\n${out}\n${err}`);
}

export interface Serve {
  url: string;
  admin: string;
  host: string;
  call: (method: string, path: string, key: string, body?: unknown) => Promise<{ status: number; body: any }>;
  /** A new developer and app; returns the app's secret key. */
  newApp: () => Promise<string>;
  stop: () => Promise<void>;
}

/** Starts "minipay serve" on a fresh database. */
export async function startServe(env: Record<string, string> = {}): Promise<Serve> {
  const db = freshDatabase();
  const admin = "admin_sdkjs_" + randomBytes(8).toString("hex");
  const host = "host_sdkjs_" + randomBytes(8).toString("hex");
  const r = await startBinary(
    ["serve"],
    {
      DATABASE_URL: db.url,
      MINIPAY_ADDR: "127.0.0.1:0",
      MINIPAY_ADMIN_KEY: admin,
      MINIPAY_HOST_KEY: host,
      MINIPAY_SECRET: "sdk-js-test-secret",
      MINIPAY_WEBHOOK_ALLOW_PRIVATE: "true",
      ...env,
    },
    /"msg":"listening","addr":"([^"]+)"/,
  );
  const url = "http://" + r.match[1];
  const call = async (method: string, path: string, key: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    url,
    admin,
    host,
    call,
    newApp: async () => {
      const dev = await call("POST", "/v1/developers", admin, { name: "JS SDK test developer" });
      const app = await call("POST", "/v1/apps", admin, {
        developer: dev.body.id,
        name: "JS SDK test app",
        options: ["goods", "virtual_goods", "tip"],
        currencies: ["CNY"],
      });
      if (app.status !== 201) throw new Error(`create app: ${JSON.stringify(app.body)}`);
      return app.body.secret_key as string;
    },
    stop: async () => {
      await r.stop();
      db.drop();
    },
  };
}
