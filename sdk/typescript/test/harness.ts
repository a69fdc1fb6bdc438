// The world the SDK's tests run in: a real worker binary (built from this
// repository) on a Redis database of its own, calling the upstream
// simulator (testsim), with the HTTP enqueue API on a free port.

import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** dist/test → the repository's root. */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

export interface World {
  baseUrl: string;
  token: string;
  /** The worker's output so far, for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Why the tests cannot run here, or "" when they can. Under CI=true the
 * caller fails instead of skipping.
 */
export function missing(): string {
  if (!process.env.REDIS_URL) return "REDIS_URL is not set (a real Redis is needed; .ci/run starts one)";
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
  } catch {
    return "go is not installed (the tests build the worker)";
  }
  return "";
}

export async function start(): Promise<World> {
  const dir = mkdtempSync(path.join(tmpdir(), "refreshq-sdk-"));
  const worker = path.join(dir, "worker");
  const testsim = path.join(dir, "testsim");
  execFileSync("go", ["build", "-o", worker, "./cmd/worker"], { cwd: repoRoot, stdio: "inherit" });
  execFileSync("go", ["build", "-o", testsim, "./sdk/typescript/testsim"], { cwd: repoRoot, stdio: "inherit" });

  const redis = new URL(process.env.REDIS_URL!);
  const lease = await leaseDB(redis);
  const sim = spawn(testsim, [], { stdio: ["pipe", "pipe", "inherit"] });
  const simURL = await new Promise<string>((resolve, reject) => {
    let out = "";
    sim.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      const m = /SIMULATOR_URL=(\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    sim.on("exit", (code) => reject(new Error(`testsim exited ${code}`)));
  });

  const port = await freePort();
  const token = "sdk-test-token";
  const dbURL = new URL(redis.toString());
  dbURL.pathname = `/${lease.db}`;
  let logs = "";
  const proc: ChildProcess = spawn(worker, [], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      REDIS_URL: dbURL.toString(),
      HTTP_ADDR: `127.0.0.1:${port}`,
      ENQUEUE_TOKEN: token,
      BUNDLE_SOCIAL_API_KEY: "sdk-key",
      HOOKED_API_KEY: "sdk-key",
      BUNDLE_SOCIAL_BASE_URL: simURL,
      HOOKED_BASE_URL: simURL,
      BUNDLE_SOCIAL_RATE: "off",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout!.on("data", (b: Buffer) => (logs += b.toString()));
  proc.stderr!.on("data", (b: Buffer) => (logs += b.toString()));
  const exited = new Promise<void>((resolve) => proc.on("exit", () => resolve()));

  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    proc.kill("SIGTERM");
    await Promise.race([exited, sleep(10_000)]);
    proc.kill("SIGKILL");
    sim.stdin!.end();
    sim.kill("SIGTERM");
    await lease.release();
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`${baseUrl}/readyz`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || proc.exitCode !== null) {
      await stop();
      throw new Error(`the worker did not become ready within 30 s:\n${logs}`);
    }
    await sleep(100);
  }
  return { baseUrl, token, logs: () => logs, stop };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * leaseDB takes a Redis database (1–15) that no other test process holds,
 * with the lease protocol of the Go e2e tests (a key in database 0 that
 * expires on its own), and empties it.
 */
async function leaseDB(u: URL): Promise<{ db: number; release: () => Promise<void> }> {
  const token = `sdk-${process.pid}-${Date.now()}`;
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    for (let db = 15; db >= 1; db--) {
      const key = `refreshq:e2e:db:${db}`;
      const got = await redisCommands(u, [["SELECT", "0"], ["SET", key, token, "NX", "EX", "900"]]);
      if (got[1] === "OK") {
        await redisCommands(u, [["SELECT", String(db)], ["FLUSHDB"]]);
        return {
          db,
          release: async () => {
            const held = await redisCommands(u, [["SELECT", "0"], ["GET", key]]);
            if (held[1] === token) await redisCommands(u, [["SELECT", "0"], ["DEL", key]]);
          },
        };
      }
    }
    if (Date.now() > deadline) throw new Error("no free Redis database for 10 minutes: other test runs hold all 15");
    await sleep(500);
  }
}

/** redisCommands sends commands on one connection and returns each reply (simple values only). */
function redisCommands(u: URL, cmds: string[][]): Promise<(string | number | null)[]> {
  const all = [...cmds];
  if (u.password) all.unshift(u.username ? ["AUTH", decodeURIComponent(u.username), decodeURIComponent(u.password)] : ["AUTH", decodeURIComponent(u.password)]);
  const skip = all.length - cmds.length;
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port || 6379), u.hostname);
    let buf = "";
    const replies: (string | number | null)[] = [];
    sock.on("error", reject);
    sock.on("data", (b: Buffer) => {
      buf += b.toString();
      for (;;) {
        const end = buf.indexOf("\r\n");
        if (end < 0) return;
        const line = buf.slice(0, end);
        let consumed = end + 2;
        let value: string | number | null;
        switch (line[0]) {
          case "+":
            value = line.slice(1);
            break;
          case ":":
            value = Number(line.slice(1));
            break;
          case "-":
            sock.destroy();
            reject(new Error(`redis: ${line.slice(1)}`));
            return;
          case "$": {
            const n = Number(line.slice(1));
            if (n < 0) {
              value = null;
              break;
            }
            if (buf.length < consumed + n + 2) return;
            value = buf.slice(consumed, consumed + n);
            consumed += n + 2;
            break;
          }
          default:
            sock.destroy();
            reject(new Error(`redis: unexpected reply ${line}`));
            return;
        }
        buf = buf.slice(consumed);
        replies.push(value);
        if (replies.length === all.length) {
          sock.end();
          resolve(replies.slice(skip));
          return;
        }
      }
    });
    sock.write(all.map((c) => `*${c.length}\r\n` + c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")).join(""));
  });
}
