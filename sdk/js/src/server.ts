/**
 * For developers' Node backends: a typed client of the minipay API (with
 * the app's secret key, which must never reach a browser) and Standard
 * Webhooks verification.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { components, operations } from "./api-types.js";

export type { components, operations, paths } from "./api-types.js";

/** A failed API call: the error object of the HTTP contract. */
export class MinipayError extends Error {
  override readonly name = "MinipayError";
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string,
    message: string,
    readonly param?: string,
    readonly requestId?: string,
  ) {
    super(message);
  }
}

/**
 * The request never got an answer (after the retries). The message names
 * the URL and the cause ("connect ECONNREFUSED 127.0.0.1:8080").
 */
export class MinipayNetworkError extends Error {
  override readonly name = "MinipayNetworkError";
  constructor(
    message: string,
    readonly url: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** Why fetch failed, in a few words: undici hides it in err.cause. */
function causeOf(err: unknown): string {
  const c = (err as { cause?: unknown })?.cause ?? err;
  if (c instanceof Error) {
    const code = (c as { code?: string }).code;
    if (c.name === "TimeoutError") return "no answer in time";
    return code && !c.message.includes(code) ? `${code}: ${c.message}` : c.message;
  }
  return String(c);
}

// The API's shapes come from docs/openapi.yaml, generated into
// api-types.ts by openapi-typescript ("npm run gen:types"); the names below
// are what the client's methods take and return.
type Schemas = components["schemas"];
type JsonBody<Op> = Op extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
type JsonOk<Op> = Op extends { responses: { 200: { content: { "application/json": infer R } } } } ? R : never;

/** A checkout session. Amounts are decimal strings in major units ("12.34") beside currency. */
export type Session = Schemas["CheckoutSession"];
export type LineItem = NonNullable<Session["line_items"]>[number];
export type CreateSessionParams = JsonBody<operations["createCheckoutSession"]>;
export type Refund = Schemas["Refund"];
export type CreateRefundParams = JsonBody<operations["createRefund"]>;
export type Money = Schemas["Money"];
export type Balance = JsonOk<operations["getBalance"]>;
export type Wallet = Schemas["Wallet"];
export type TopUpParams = JsonBody<operations["topUpWallet"]>;
export type ConfirmParams = JsonBody<operations["confirmCheckoutSession"]>;
export type WebhookEndpoint = Schemas["WebhookEndpoint"];
/** enabled_events defaults to every type ("*"). */
export type CreateWebhookEndpointParams = Omit<JsonBody<operations["createWebhookEndpoint"]>, "enabled_events"> & { enabled_events?: string[] };
export type App = Schemas["App"];

/** The event types minipay sends; other strings for types added later. */
export type EventType = Schemas["Event"]["type"] | (string & {});

/** An event: what a webhook carries and the event log lists. */
export interface Event<T = Record<string, unknown>> {
  id: string;
  object: "event";
  type: EventType;
  created: string;
  data: { object: T };
}

/**
 * A checkout session as the host's payment sheet sees it (host key): the
 * session without its client secret and customer, plus the app's name.
 */
export type HostSession = Omit<Session, "client_secret" | "customer"> & { app_name: string };

// Subscriptions: plans, subscriptions (a user's signed agreement to be
// charged a plan's amount every period), invoices (each charge) and, in
// sandboxes, test clocks.

/** A plan: what a subscription charges, and how often. */
export type Plan = Schemas["Plan"];
/** How often a plan charges: every interval_count intervals. */
export type Interval = Plan["interval"];
/** The option must be recurring and enabled for the app; the amount within its limits. */
export type CreatePlanParams = JsonBody<operations["createPlan"]>;
/** A subscription, with its plan expanded. client_secret is for the mini-app that has the user sign it. */
export type Subscription = Schemas["Subscription"];
export type SubscriptionStatus = Subscription["status"];
export type CreateSubscriptionParams = JsonBody<operations["createSubscription"]>;
/** The developer's cancel: now, or at the end of the paid period. */
export type CancelSubscriptionParams = { at_period_end?: boolean };
/** One charge of a subscription. A paid invoice is a payment: refundable with refunds.create({invoice}). */
export type Invoice = Schemas["Invoice"];
/** A sandbox's clock: subscriptions made with it live by its time. */
export type TestClock = Schemas["TestClock"];
/**
 * A subscription as the host's agreement sheet sees it (host key): no
 * client secret, no customer, plus the app's name.
 */
export type HostSubscription = Schemas["HostSubscription"];
/** The host's signing for the signed-in user, with the client secret the mini-app handed over. */
export type SignSubscriptionParams = JsonBody<operations["signSubscription"]>;

export interface ListParams {
  limit?: number;
  starting_after?: string;
}

export interface List<T> {
  data: T[];
  has_more: boolean;
}

export interface RequestOptions {
  /** Identifies one logical request across its retries; generated when absent. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface ClientOptions {
  /** Default http://localhost:8080. */
  baseUrl?: string;
  /** Retries after network errors, 5xx and 429 (default 3). */
  maxRetries?: number;
  /** First backoff delay and the cap on any delay, Retry-After included (defaults 200 ms, 10 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Per-attempt timeout (default 30 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** A new random idempotency key. */
export function newIdempotencyKey(): string {
  return "idk_" + randomBytes(16).toString("hex");
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    // An abort event fired before the listener is added is never seen again.
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });

function retryAfterMs(v: string | null): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/**
 * A client of the minipay API for one app's secret key. POSTs carry an
 * Idempotency-Key that stays the same across retries, so a retried create
 * or refund happens once.
 */
export class Minipay {
  private readonly api: Transport;

  constructor(secretKey: string, opts: ClientOptions = {}) {
    if (!secretKey) throw new TypeError("a secret key (sk_…) is required");
    if (secretKey.startsWith("host_") || secretKey.startsWith("admin_")) {
      throw new TypeError("Minipay takes an app's secret key (sk_…); a host key goes to MinipayHost");
    }
    this.api = new Transport(secretKey, opts);
  }

  private request<T>(method: string, path: string, body?: unknown, o?: RequestOptions): Promise<T> {
    return this.api.request<T>(method, path, body, o);
  }

  readonly checkout = {
    sessions: {
      create: (p: CreateSessionParams, o?: RequestOptions) => this.request<Session>("POST", "/v1/checkout/sessions", p, o),
      retrieve: (id: string, o?: RequestOptions) => this.request<Session>("GET", `/v1/checkout/sessions/${enc(id)}`, undefined, o),
      list: (p: ListParams & { status?: Session["status"] } = {}, o?: RequestOptions) =>
        this.request<List<Session>>("GET", "/v1/checkout/sessions" + query(p), undefined, o),
      cancel: (id: string, o?: RequestOptions) => this.request<Session>("POST", `/v1/checkout/sessions/${enc(id)}/cancel`, {}, o),
      capture: (id: string, o?: RequestOptions) => this.request<Session>("POST", `/v1/checkout/sessions/${enc(id)}/capture`, {}, o),
      void: (id: string, o?: RequestOptions) => this.request<Session>("POST", `/v1/checkout/sessions/${enc(id)}/void`, {}, o),
    },
  };

  readonly refunds = {
    create: (p: CreateRefundParams, o?: RequestOptions) => this.request<Refund>("POST", "/v1/refunds", p, o),
    retrieve: (id: string, o?: RequestOptions) => this.request<Refund>("GET", `/v1/refunds/${enc(id)}`, undefined, o),
  };

  readonly balance = {
    retrieve: (o?: RequestOptions) => this.request<Balance>("GET", "/v1/balance", undefined, o),
  };

  /** The app this key belongs to. */
  readonly app = {
    retrieve: (o?: RequestOptions) => this.request<App>("GET", "/v1/app", undefined, o),
  };

  readonly events = {
    list: (p: ListParams & { type?: EventType; order?: "asc" | "desc" } = {}, o?: RequestOptions) =>
      this.request<List<Event>>("GET", "/v1/events" + query(p), undefined, o),
    retrieve: (id: string, o?: RequestOptions) => this.request<Event>("GET", `/v1/events/${enc(id)}`, undefined, o),
  };

  /** Plans: what subscriptions charge. */
  readonly plans = {
    create: (p: CreatePlanParams, o?: RequestOptions) => this.request<Plan>("POST", "/v1/plans", p, o),
    retrieve: (id: string, o?: RequestOptions) => this.request<Plan>("GET", `/v1/plans/${enc(id)}`, undefined, o),
    list: (p: ListParams = {}, o?: RequestOptions) => this.request<List<Plan>>("GET", "/v1/plans" + query(p), undefined, o),
  };

  /**
   * Subscriptions: create one per user who is to sign (hand its id and
   * client_secret to the mini-app, which calls requestSubscription), read,
   * list, cancel.
   */
  readonly subscriptions = {
    create: (p: CreateSubscriptionParams, o?: RequestOptions) => this.request<Subscription>("POST", "/v1/subscriptions", p, o),
    retrieve: (id: string, o?: RequestOptions) => this.request<Subscription>("GET", `/v1/subscriptions/${enc(id)}`, undefined, o),
    list: (p: ListParams & { status?: SubscriptionStatus; plan?: string } = {}, o?: RequestOptions) =>
      this.request<List<Subscription>>("GET", "/v1/subscriptions" + query(p), undefined, o),
    /** Cancel now, or with at_period_end at the end of the period already paid for. */
    cancel: (id: string, p: CancelSubscriptionParams = {}, o?: RequestOptions) =>
      this.request<Subscription>("POST", `/v1/subscriptions/${enc(id)}/cancel`, p, o),
  };

  /** Invoices: each charge of a subscription. */
  readonly invoices = {
    retrieve: (id: string, o?: RequestOptions) => this.request<Invoice>("GET", `/v1/invoices/${enc(id)}`, undefined, o),
    list: (p: ListParams & { subscription?: string; status?: Invoice["status"] } = {}, o?: RequestOptions) =>
      this.request<List<Invoice>>("GET", "/v1/invoices" + query(p), undefined, o),
  };

  /**
   * Test clocks, in sandboxes only (elsewhere 403 sandbox_only): advance
   * runs every trial end, notice, renewal, retry and expiry due on the
   * clock, in time order, and answers once the clock is ready again.
   */
  readonly testClocks = {
    create: (p: { frozen_time: string }, o?: RequestOptions) => this.request<TestClock>("POST", "/v1/test_clocks", p, o),
    retrieve: (id: string, o?: RequestOptions) => this.request<TestClock>("GET", `/v1/test_clocks/${enc(id)}`, undefined, o),
    advance: (id: string, p: { frozen_time: string }, o?: RequestOptions) =>
      this.request<TestClock>("POST", `/v1/test_clocks/${enc(id)}/advance`, p, o),
  };

  readonly webhookEndpoints = {
    create: (p: CreateWebhookEndpointParams, o?: RequestOptions) =>
      this.request<WebhookEndpoint>("POST", "/v1/webhook_endpoints", { enabled_events: ["*"], ...p }, o),
    retrieve: (id: string, o?: RequestOptions) =>
      this.request<WebhookEndpoint>("GET", `/v1/webhook_endpoints/${enc(id)}`, undefined, o),
    list: (p: ListParams = {}, o?: RequestOptions) =>
      this.request<List<WebhookEndpoint>>("GET", "/v1/webhook_endpoints" + query(p), undefined, o),
    del: (id: string, o?: RequestOptions) => this.request<unknown>("DELETE", `/v1/webhook_endpoints/${enc(id)}`, undefined, o),
  };
}

/**
 * A client for the host: the super-app's wallet service, with the host key
 * (host_…), which must never reach a browser or a mini-app. It funds
 * wallets, reads them, shows a session on the payment sheet and confirms
 * it for the signed-in user, shows a subscription on the agreement sheet
 * and signs it, and cancels it when the user asks.
 */
export class MinipayHost {
  private readonly api: Transport;

  constructor(hostKey: string, opts: ClientOptions = {}) {
    if (!hostKey) throw new TypeError("a host key (host_…) is required");
    if (hostKey.startsWith("sk_")) throw new TypeError("MinipayHost takes the host key (host_…); an app's secret key goes to Minipay");
    this.api = new Transport(hostKey, opts);
  }

  readonly wallets = {
    /** Credit money the host received (by card, bank, …) to a user's wallet. */
    topUp: (userId: string, p: TopUpParams, o?: RequestOptions) =>
      this.api.request<Wallet>("POST", `/v1/wallets/${enc(userId)}/topups`, p, o),
    retrieve: (userId: string, o?: RequestOptions) => this.api.request<Wallet>("GET", `/v1/wallets/${enc(userId)}`, undefined, o),
  };

  readonly checkout = {
    sessions: {
      /** What the payment sheet shows: no client secret, no customer, plus app_name. */
      retrieve: (id: string, o?: RequestOptions) => this.api.request<HostSession>("GET", `/v1/checkout/sessions/${enc(id)}`, undefined, o),
      /**
       * Pay a session from the signed-in user's wallet, with the client
       * secret the mini-app handed over. Pass the bridge request's id as
       * idempotencyKey so a retried confirm pays once.
       */
      confirm: (id: string, p: ConfirmParams, o?: RequestOptions) =>
        this.api.request<Session>("POST", `/v1/checkout/sessions/${enc(id)}/confirm`, p, o),
    },
  };

  readonly subscriptions = {
    /** What the agreement sheet shows: no client secret, no customer, plus app_name. */
    retrieve: (id: string, o?: RequestOptions) =>
      this.api.request<HostSubscription>("GET", `/v1/subscriptions/${enc(id)}`, undefined, o),
    /**
     * Sign a subscription for the signed-in user, with the client secret
     * the mini-app handed over: without a trial the first period is
     * charged at once (402 insufficient_funds leaves it incomplete). Pass
     * the bridge request's id as idempotencyKey so a retried sign charges
     * once.
     */
    sign: (id: string, p: SignSubscriptionParams, o?: RequestOptions) =>
      this.api.request<HostSubscription>("POST", `/v1/subscriptions/${enc(id)}/sign`, p, o),
    /** The user's cancel, always at the end of the period already paid for; only the user who signed may. */
    cancel: (id: string, p: { user_id: string }, o?: RequestOptions) =>
      this.api.request<HostSubscription>("POST", `/v1/subscriptions/${enc(id)}/cancel`, p, o),
  };
}

/** Sends requests with one key, retrying them with the same idempotency key. */
class Transport {
  private readonly baseUrl: string;
  private readonly maxRetries: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(
    private readonly key: string,
    opts: ClientOptions,
  ) {
    this.baseUrl = (opts.baseUrl ?? "http://localhost:8080").replace(/\/+$/, "");
    this.maxRetries = opts.maxRetries ?? 3;
    this.minBackoffMs = opts.minBackoffMs ?? 200;
    this.maxBackoffMs = opts.maxBackoffMs ?? 10_000;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.fetchFn = opts.fetch ?? fetch;
  }

  /** Sends one logical request, retrying it with the same idempotency key. */
  async request<T>(method: string, path: string, body?: unknown, o: RequestOptions = {}): Promise<T> {
    const idem = method === "POST" ? (o.idempotencyKey ?? newIdempotencyKey()) : undefined;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      let wait: number | undefined;
      let failure: Error;
      try {
        const res = await this.fetchFn(this.baseUrl + path, {
          method,
          headers: {
            Authorization: `Bearer ${this.key}`,
            Accept: "application/json",
            ...(payload !== undefined ? { "Content-Type": "application/json" } : {}),
            ...(idem ? { "Idempotency-Key": idem } : {}),
          },
          body: payload,
          signal: o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(this.timeoutMs)]) : AbortSignal.timeout(this.timeoutMs),
        });
        const text = await res.text();
        if (res.ok) return (text ? JSON.parse(text) : undefined) as T;
        failure = apiError(res, text);
        if (res.status < 500 && res.status !== 429) throw failure;
        wait = retryAfterMs(res.headers.get("retry-after"));
      } catch (err) {
        if (err instanceof MinipayError && err.status < 500 && err.status !== 429) throw err;
        if (o.signal?.aborted) throw o.signal.reason;
        const url = this.baseUrl + path.split("?")[0];
        failure = err instanceof MinipayError ? err : new MinipayNetworkError(`${method} ${url}: ${causeOf(err)}`, url, err);
      }
      if (attempt >= this.maxRetries) throw failure;
      const ceiling = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** attempt);
      await sleep(Math.min(wait ?? ceiling / 2 + Math.random() * (ceiling / 2), this.maxBackoffMs), o.signal);
    }
  }
}

function apiError(res: Response, text: string): MinipayError {
  try {
    const e = JSON.parse(text).error;
    if (e && typeof e.code === "string") {
      return new MinipayError(res.status, e.type, e.code, e.message, e.param || undefined, e.request_id ?? res.headers.get("request-id") ?? undefined);
    }
  } catch {
    // not JSON: fall through
  }
  return new MinipayError(res.status, "api_error", `http_${res.status}`, text.trim(), undefined, res.headers.get("request-id") ?? undefined);
}

const enc = encodeURIComponent;

function query(p: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? "?" + s : "";
}

/** A webhook whose signature or timestamp did not check out. Answer it with 400. */
export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";
}

export interface VerifyOptions {
  /** How far the webhook-timestamp may be from now, in seconds (default 300). */
  toleranceSeconds?: number;
  /** The current time, for tests. */
  now?: Date;
}

type Headers_ = Headers | Record<string, string | string[] | undefined>;

function header(h: Headers_, name: string): string | undefined {
  if (typeof (h as Headers).get === "function") return (h as Headers).get(name) ?? undefined;
  const rec = h as Record<string, string | string[] | undefined>;
  const key = Object.keys(rec).find((k) => k.toLowerCase() === name);
  const v = key === undefined ? undefined : rec[key];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Verifies a webhook per the Standard Webhooks specification and returns
 * the parsed event. `body` must be the raw request body, unparsed:
 * re-serialized JSON does not verify. Headers may be a fetch Headers or
 * Node's IncomingHttpHeaders. Throws WebhookVerificationError.
 */
export function verifyWebhook<T = Record<string, unknown>>(
  secret: string,
  headers: Headers_,
  body: string | Uint8Array,
  opts: VerifyOptions = {},
): Event<T> {
  const id = header(headers, "webhook-id");
  const ts = header(headers, "webhook-timestamp");
  const sigs = header(headers, "webhook-signature");
  if (!id || !ts || !sigs) throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header");
  if (!/^\d+$/.test(ts)) throw new WebhookVerificationError("malformed webhook-timestamp");
  const tolerance = opts.toleranceSeconds ?? 300;
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - Number(ts)) > tolerance) throw new WebhookVerificationError("webhook-timestamp outside the tolerance");
  if (!secret.startsWith("whsec_")) throw new WebhookVerificationError("the secret must start with whsec_");
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  if (key.length === 0) throw new WebhookVerificationError("empty secret");
  const raw = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body);
  const mac = createHmac("sha256", key);
  mac.update(`${id}.${ts}.`);
  mac.update(raw);
  const expected = mac.digest();
  let ok = false;
  for (const part of sigs.split(" ")) {
    const [version, b64] = part.split(",", 2);
    if (version !== "v1" || !b64) continue;
    const got = Buffer.from(b64, "base64");
    if (got.length === expected.length && timingSafeEqual(got, expected)) ok = true;
  }
  if (!ok) throw new WebhookVerificationError("no matching signature");
  try {
    return JSON.parse(raw.toString("utf8")) as Event<T>;
  } catch {
    throw new WebhookVerificationError("the body is not JSON");
  }
}
