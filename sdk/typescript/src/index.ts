// A small typed client for refreshq's HTTP enqueue API (docs/openapi.yaml):
// enqueue, bulk, get, wait and cancel. It uses the runtime's fetch (Node 18+,
// browsers, Deno, Bun) and has no dependencies.

/** The providers refreshq serves. */
export type Provider = "bundle_social" | "hooked";

/** One refresh to enqueue, as the API's POST /v1/refreshes takes it. */
export interface Refresh {
  provider: Provider;
  /** bundle_social: the team whose profile is refreshed. */
  team_id?: string;
  /** bundle_social: TIKTOK, INSTAGRAM, YOUTUBE, ... */
  platform?: string;
  /** hooked: the account refreshed. */
  account_id?: string;
  /** One of the worker's QUEUES; default "default". */
  queue?: string;
  /** A JSON object of at most 4 KiB, copied to the result. */
  meta?: Record<string, unknown>;
  /** Who the refresh is for (at most 256 bytes): tenants share an API key's budget fairly. */
  tenant?: string;
  /**
   * The task's id, chosen by you: an idempotency key while the task or its
   * result is kept. Sending the same id with the same refresh again
   * enqueues nothing and returns that task (`existing: true`); with a
   * different refresh it is a TaskIdConflictError.
   */
  task_id?: string;
  /** The task ends failed if it has not ended by then. */
  deadline?: Date | string;
  /** Skip this refresh if one of the same subject was enqueued within this window (a Go duration, "1h"). */
  unique?: string;
  /** Run no sooner than this from now (a Go duration, "10m"). Not with `at`. */
  in?: string;
  /** Run no sooner than this. Not with `in`. */
  at?: Date | string;
}

/** What the API answers to POST /v1/refreshes. */
export interface EnqueueResponse {
  /** One per refresh, in order: its task id, or null when it was skipped or not enqueued. */
  task_ids: (string | null)[];
  /** Refreshes whose task_id already named the same refresh: nothing was enqueued for them. */
  existing?: { index: number; task_id: string }[];
  /** Refreshes skipped under `unique`, and the task each duplicates. */
  duplicates?: { index: number; existing_task_id: string }[];
  /** Only on errors: refreshes that may or may not have been enqueued. */
  in_doubt?: { index: number; task_id: string }[];
  /** Only on errors: refreshes that were not enqueued. */
  not_enqueued?: number[];
  errors?: Problem[];
  error_count?: number;
}

/** What became of one refresh sent with enqueue. */
export interface Enqueued {
  /** The task's id; null when it was skipped as a duplicate. */
  taskId: string | null;
  /** True when task_id already named this same refresh: nothing new was enqueued. */
  existing: boolean;
  /** When skipped under `unique`: the task it duplicates. */
  duplicateOf?: string;
}

/** One problem the API reports: which refresh (index), which field, and what is wrong. */
export interface Problem {
  index?: number;
  field?: string;
  message: string;
}

/** A task's result, as typed JSON: numbers are numbers, result and meta are JSON. */
export interface Result {
  v: number;
  task_id: string;
  task_type: string;
  queue: string;
  provider: string;
  subject: string;
  status: "succeeded" | "failed";
  attempts: number;
  http_status: number;
  /** Empty on success: rate_limited, server, timeout, network, auth, not_found, cancelled, ... */
  error_kind: string;
  error: string;
  /** The upstream's JSON body on success; null on failure. */
  result: unknown;
  meta: Record<string, unknown>;
  enqueued_at: string;
  finished_at: string;
  duration_ms: number;
  worker: string;
  /** Fields added by later schema versions, as strings. */
  [field: string]: unknown;
}

/** Where a task without a result is. */
export type TaskState = "pending" | "scheduled" | "active" | "retry" | "unknown";

/** What get answers: the result, or where the task is while it has none. */
export type Lookup =
  | { done: true; result: Result }
  | { done: false; state: TaskState };

/** What cancel did. */
export interface CancelOutcome {
  taskId: string;
  /**
   * cancelled: removed before it ran; `result` is its cancelled result.
   * cancelling: it is running; its cancelled result lands within seconds.
   * ended: it had ended before the cancel; `result` is the one that stands.
   */
  state: "cancelled" | "cancelling" | "ended";
  message: string;
  result?: Result;
}

/** Any answer of the API that is not a success. */
export class RefreshqError extends Error {
  /** The HTTP status, or 0 when no answer came back. */
  readonly status: number;
  /** The problems the API listed (at most 20); errorCount counts them all. */
  readonly problems: Problem[];
  readonly errorCount: number;
  /** The parsed body, when it was JSON. */
  readonly body: unknown;

  constructor(message: string, status: number, body?: unknown) {
    const problems = problemsOf(body);
    super(problems.length > 0 ? `${message}: ${problems.map(describe).join("; ")}` : message);
    this.name = new.target.name;
    this.status = status;
    this.problems = problems;
    this.errorCount = numberField(body, "error_count") ?? problems.length;
    this.body = body;
  }
}

/** 400: the request or some refreshes are invalid; nothing was enqueued. */
export class InvalidRequestError extends RefreshqError {}
/** 401: missing or wrong token. */
export class UnauthorizedError extends RefreshqError {}
/** 404 from cancel: the task is unknown (never enqueued, or its result expired). */
export class UnknownTaskError extends RefreshqError {}
/** 409 from enqueue: a task_id already names a different refresh. */
export class TaskIdConflictError extends RefreshqError {
  /** The rest of the request, which was enqueued. */
  get response(): EnqueueResponse {
    return this.body as EnqueueResponse;
  }
}
/** 413: too many refreshes or too large a body; split it. */
export class TooLargeError extends RefreshqError {}
/** 503: Redis is unreachable. For a batch cut off part-way, `response` says what was enqueued. */
export class UnavailableError extends RefreshqError {
  get response(): EnqueueResponse | undefined {
    const b = this.body as EnqueueResponse | undefined;
    return b && Array.isArray(b.task_ids) ? b : undefined;
  }
}
/** wait ran out of time; `state` is where the task was then. */
export class WaitTimeoutError extends RefreshqError {
  readonly taskId: string;
  readonly state: TaskState;
  constructor(taskId: string, state: TaskState, timeoutMs: number) {
    super(`no result for task ${taskId} within ${timeoutMs} ms: it is ${state}`, 404);
    this.taskId = taskId;
    this.state = state;
  }
}

export interface ClientOptions {
  /** The worker's HTTP_ADDR as a URL, e.g. "http://127.0.0.1:8080". */
  baseUrl: string;
  /** ENQUEUE_TOKEN. */
  token: string;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/** The API holds one wait at most this long; wait repeats it for longer. */
const maxPollMs = 60_000;

/** A client of one worker's HTTP enqueue API. */
export class Client {
  private readonly base: string;
  private readonly token: string;
  private readonly fetch: typeof fetch;

  constructor(opts: ClientOptions) {
    if (!opts.baseUrl) throw new TypeError("baseUrl is required, e.g. http://127.0.0.1:8080");
    if (!opts.token) throw new TypeError("token is required: the worker's ENQUEUE_TOKEN");
    this.base = opts.baseUrl.replace(/\/+$/, "");
    this.token = opts.token;
    this.fetch = opts.fetch ?? globalThis.fetch;
  }

  /**
   * Enqueues one refresh. Throws InvalidRequestError (400),
   * TaskIdConflictError (409), UnavailableError (503), ...
   */
  async enqueue(refresh: Refresh, opts?: { signal?: AbortSignal }): Promise<Enqueued> {
    const resp = await this.send(refresh, opts?.signal);
    return {
      taskId: resp.task_ids[0] ?? null,
      existing: (resp.existing ?? []).length > 0,
      duplicateOf: resp.duplicates?.[0]?.existing_task_id,
    };
  }

  /**
   * Enqueues a batch (at most 1000). The whole batch is validated first:
   * one invalid refresh is an InvalidRequestError and nothing is enqueued.
   */
  async bulk(refreshes: Refresh[], opts?: { signal?: AbortSignal }): Promise<EnqueueResponse> {
    if (refreshes.length === 0) throw new TypeError("bulk needs at least one refresh");
    return this.send(refreshes, opts?.signal);
  }

  /** Looks a task's result up: the result, or where the task is while it has none. */
  async get(taskId: string, opts?: { signal?: AbortSignal }): Promise<Lookup> {
    return this.lookup(taskId, 0, opts?.signal);
  }

  /**
   * Waits until the task has a result and returns it, however early it
   * landed; throws WaitTimeoutError after timeoutMs (default 60 s). The
   * server holds each request until the result lands (no polling loop).
   */
  async wait(taskId: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Result> {
    const timeoutMs = opts?.timeoutMs ?? maxPollMs;
    const end = Date.now() + timeoutMs;
    for (;;) {
      const left = end - Date.now();
      const got = await this.lookup(taskId, Math.max(0, Math.min(left, maxPollMs)), opts?.signal);
      if (got.done) return got.result;
      if (end - Date.now() <= 0) throw new WaitTimeoutError(taskId, got.state, timeoutMs);
    }
  }

  /**
   * Cancels a task: one not yet ended gets exactly one `cancelled` result.
   * A task that had already ended is left as it was (state "ended").
   * Throws UnknownTaskError (404) for a task the worker does not know.
   */
  async cancel(taskId: string, opts?: { signal?: AbortSignal }): Promise<CancelOutcome> {
    const { status, body } = await this.request("DELETE", this.taskPath(taskId), undefined, opts?.signal);
    if (status === 200 || status === 202 || status === 409) {
      const b = body as { task_id: string; state: CancelOutcome["state"]; message: string; result?: Result };
      return { taskId: b.task_id, state: b.state, message: b.message, result: b.result };
    }
    if (status === 404) throw new UnknownTaskError(`task ${taskId} is unknown`, status, body);
    throw errorFor(status, body, `cancel task ${taskId}`);
  }

  private async lookup(taskId: string, waitMs: number, signal?: AbortSignal): Promise<Lookup> {
    let path = this.taskPath(taskId);
    if (waitMs > 0) path += `?wait=${Math.ceil(waitMs / 1000)}s`;
    const { status, body } = await this.request("GET", path, undefined, signal);
    if (status === 200) return { done: true, result: body as Result };
    if (status === 404) return { done: false, state: (body as { state: TaskState }).state };
    throw errorFor(status, body, `get task ${taskId}`);
  }

  private async send(payload: Refresh | Refresh[], signal?: AbortSignal): Promise<EnqueueResponse> {
    const { status, body } = await this.request("POST", "/v1/refreshes", JSON.stringify(payload), signal);
    if (status === 202) return body as EnqueueResponse;
    throw errorFor(status, body, "enqueue");
  }

  private taskPath(taskId: string): string {
    if (!taskId) throw new TypeError("a task id is required");
    return `/v1/refreshes/${encodeURIComponent(taskId)}`;
  }

  private async request(method: string, path: string, body: string | undefined, signal?: AbortSignal): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    let resp: Response;
    try {
      resp = await this.fetch(this.base + path, { method, headers, body, signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new RefreshqError(`${method} ${path}: no answer from ${this.base}: ${(err as Error).message}`, 0);
    }
    const text = await resp.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text for the error
    }
    return { status: resp.status, body: parsed };
  }
}

function errorFor(status: number, body: unknown, what: string): RefreshqError {
  switch (status) {
    case 400:
      return new InvalidRequestError(`${what}: invalid request`, status, body);
    case 401:
      return new UnauthorizedError(`${what}: missing or wrong token (ENQUEUE_TOKEN)`, status, body);
    case 409:
      return new TaskIdConflictError(`${what}: task id taken`, status, body);
    case 413:
      return new TooLargeError(`${what}: request too large; split it`, status, body);
    case 503:
      return new UnavailableError(`${what}: Redis is unreachable`, status, body);
  }
  return new RefreshqError(`${what}: unexpected status ${status}`, status, body);
}

function problemsOf(body: unknown): Problem[] {
  const errs = (body as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(errs) ? (errs as Problem[]) : [];
}

function numberField(body: unknown, key: string): number | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[key];
  return typeof v === "number" ? v : undefined;
}

function describe(p: Problem): string {
  const where = [p.index !== undefined ? `#${p.index}` : "", p.field ?? ""].filter(Boolean).join(" ");
  return where ? `${where}: ${p.message}` : p.message;
}
