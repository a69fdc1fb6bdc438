// The SDK against a real worker on real Redis (see harness.ts).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  Client,
  InvalidRequestError,
  TaskIdConflictError,
  TooLargeError,
  UnauthorizedError,
  UnknownTaskError,
  WaitTimeoutError,
  type Refresh,
} from "../src/index.js";
import { missing, start, type World } from "./harness.js";

const why = missing();
if (why && process.env.CI === "true") {
  // Under CI a missing dependency is a failure, not a skip.
  throw new Error(`the SDK tests cannot run: ${why}`);
}

const unique = () => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

describe("refreshq client against a real worker", { skip: why || false }, () => {
  let world: World;
  let c: Client;

  before(async () => {
    world = await start();
    c = new Client({ baseUrl: world.baseUrl, token: world.token });
  });
  after(async () => {
    await world?.stop();
  });

  test("enqueue, then wait for a typed result", async () => {
    const got = await c.enqueue({ provider: "hooked", account_id: `acc-${unique()}`, meta: { request_id: "r-1", n: 2 } });
    assert.equal(typeof got.taskId, "string");
    assert.equal(got.existing, false);
    const res = await c.wait(got.taskId!, { timeoutMs: 30_000 });
    assert.equal(res.task_id, got.taskId);
    assert.equal(res.status, "succeeded", `result: ${JSON.stringify(res)}`);
    assert.equal(res.provider, "hooked");
    assert.equal(typeof res.attempts, "number");
    assert.equal(res.attempts, 1);
    assert.equal(res.http_status, 200);
    assert.equal(typeof res.duration_ms, "number");
    assert.deepEqual(res.meta, { request_id: "r-1", n: 2 });
    assert.equal(typeof res.result, "object");
    assert.notEqual(res.result, null);

    const again = await c.get(got.taskId!);
    assert.ok(again.done);
    assert.equal(again.result.task_id, got.taskId);
  });

  test("bulk keeps order and reports duplicates", async () => {
    const acc = `acc-${unique()}`;
    const batch: Refresh[] = [
      { provider: "hooked", account_id: acc, unique: "1h" },
      { provider: "bundle_social", team_id: `team-${unique()}`, platform: "TIKTOK", queue: "critical" },
      { provider: "hooked", account_id: acc, unique: "1h" },
    ];
    const resp = await c.bulk(batch);
    assert.equal(resp.task_ids.length, 3);
    assert.equal(typeof resp.task_ids[0], "string");
    assert.equal(typeof resp.task_ids[1], "string");
    assert.equal(resp.task_ids[2], null);
    assert.deepEqual(resp.duplicates, [{ index: 2, existing_task_id: resp.task_ids[0] }]);
    const bundle = await c.wait(resp.task_ids[1]!, { timeoutMs: 30_000 });
    assert.equal(bundle.subject.endsWith("/TIKTOK"), true);
    assert.equal(bundle.queue, "critical");
  });

  test("task_id is an idempotency key", async () => {
    const taskId = `order-${unique()}`;
    const acc = `acc-${unique()}`;
    const first = await c.enqueue({ provider: "hooked", account_id: acc, task_id: taskId, tenant: "acme", deadline: new Date(Date.now() + 3600_000) });
    assert.deepEqual(first, { taskId, existing: false, duplicateOf: undefined });
    const second = await c.enqueue({ provider: "hooked", account_id: acc, task_id: taskId, tenant: "acme" });
    assert.deepEqual(second, { taskId, existing: true, duplicateOf: undefined });
    await assert.rejects(c.enqueue({ provider: "hooked", account_id: acc, task_id: taskId, tenant: "other" }), TaskIdConflictError);
    await assert.rejects(c.enqueue({ provider: "hooked", account_id: `other-${unique()}`, task_id: taskId }), (err: unknown) => {
      assert.ok(err instanceof TaskIdConflictError, String(err));
      assert.equal(err.status, 409);
      assert.equal(err.problems[0].field, "task_id");
      assert.deepEqual(err.response.not_enqueued, [0]);
      return true;
    });
    const res = await c.wait(taskId, { timeoutMs: 30_000 });
    assert.equal(res.task_id, taskId);
    // Still the same task once it has ended.
    const third = await c.enqueue({ provider: "hooked", account_id: acc, task_id: taskId, tenant: "acme" });
    assert.equal(third.existing, true);
  });

  test("get says where a task without a result is", async () => {
    assert.deepEqual(await c.get(`never-${unique()}`), { done: false, state: "unknown" });
    const later = await c.enqueue({ provider: "hooked", account_id: `acc-${unique()}`, in: "1h" });
    assert.deepEqual(await c.get(later.taskId!), { done: false, state: "scheduled" });
  });

  test("wait gives up after its timeout, with the task's state", async () => {
    const later = await c.enqueue({ provider: "hooked", account_id: `acc-${unique()}`, at: new Date(Date.now() + 3600_000) });
    const t0 = Date.now();
    await assert.rejects(c.wait(later.taskId!, { timeoutMs: 1000 }), (err: unknown) => {
      assert.ok(err instanceof WaitTimeoutError, String(err));
      assert.equal(err.state, "scheduled");
      return true;
    });
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 10_000, `took ${took} ms`);
  });

  test("wait is woken by the result, not by polling", async () => {
    // "slow" subjects take 2 s at the simulator.
    const got = await c.enqueue({ provider: "hooked", account_id: `slow-${unique()}` });
    const t0 = Date.now();
    const res = await c.wait(got.taskId!, { timeoutMs: 30_000 });
    const took = Date.now() - t0;
    assert.equal(res.status, "succeeded");
    assert.ok(took >= 1500 && took < 10_000, `took ${took} ms`);
  });

  test("a failed result carries its error kind", async () => {
    const got = await c.enqueue({ provider: "hooked", account_id: `gone-${unique()}` });
    const res = await c.wait(got.taskId!, { timeoutMs: 30_000 });
    assert.equal(res.status, "failed");
    assert.equal(res.error_kind, "not_found");
    assert.equal(res.http_status, 404);
    assert.equal(res.result, null);
  });

  test("invalid requests are typed errors naming the refresh and field", async () => {
    await assert.rejects(
      c.bulk([
        { provider: "hooked", account_id: "ok" },
        { provider: "bundle_social", team_id: "t", platform: "tiktok" },
        { provider: "hooked" },
      ]),
      (err: unknown) => {
        assert.ok(err instanceof InvalidRequestError, String(err));
        assert.deepEqual(
          err.problems.map((p) => `${p.index}/${p.field}`),
          ["1/platform", "2/account_id"],
        );
        assert.equal(err.errorCount, 2);
        return true;
      },
    );
    const many: Refresh[] = Array.from({ length: 1001 }, () => ({ provider: "hooked", account_id: "a" }));
    await assert.rejects(c.bulk(many), TooLargeError);
    const wrong = new Client({ baseUrl: world.baseUrl, token: "not-the-token" });
    await assert.rejects(wrong.get("x"), UnauthorizedError);
  });

  test("cancel ends a task not yet run with one cancelled result", async () => {
    const later = await c.enqueue({ provider: "hooked", account_id: `acc-${unique()}`, in: "1h" });
    const out = await c.cancel(later.taskId!);
    assert.equal(out.state, "cancelled", JSON.stringify(out));
    assert.equal(out.taskId, later.taskId);
    assert.equal(out.result?.error_kind, "cancelled");
    assert.equal(typeof out.result?.attempts, "number");
    const res = await c.wait(later.taskId!, { timeoutMs: 30_000 });
    assert.equal(res.status, "failed");
    assert.equal(res.error_kind, "cancelled");
    const again = await c.cancel(later.taskId!);
    assert.equal(again.state, "ended");
    assert.equal(again.result?.task_id, later.taskId);
    await assert.rejects(c.cancel(`never-${unique()}`), UnknownTaskError);
  });

  test("cancel of a running task lands its cancelled result", async () => {
    // "slow" subjects take 2 s at the simulator: the task is running.
    const got = await c.enqueue({ provider: "hooked", account_id: `slow-${unique()}` });
    for (let i = 0; i < 100 && (await c.get(got.taskId!)).done === false; i++) {
      const st = await c.get(got.taskId!);
      if (!st.done && st.state === "active") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const out = await c.cancel(got.taskId!);
    assert.ok(["cancelled", "cancelling", "ended"].includes(out.state), JSON.stringify(out));
    const res = await c.wait(got.taskId!, { timeoutMs: 30_000 });
    if (out.state === "ended") {
      assert.equal(res.status, "succeeded"); // it ended before the cancel took effect
    } else {
      assert.equal(res.error_kind, "cancelled");
    }
  });
});
