// BullMQ doing refreshq's job, for cmd/bench to run beside refreshq's
// worker: per job, the same bundle.social profile refresh request and one
// XADD of the same result entry, at the same concurrency. It has none of
// refreshq's guarantees (no budget, no ledger, no exactly-once publish).
//
//   node bench.js enqueue   adds TASKS jobs to BULLMQ_QUEUE, then exits
//   node bench.js work      runs a Worker until SIGTERM; prints "ready"
//
// Environment: REDIS_URL, BULLMQ_QUEUE, TASKS (enqueue); UPSTREAM (base
// URL), STREAM (results stream), CONCURRENCY, API_KEY (work).
'use strict';

const http = require('node:http');
const os = require('node:os');
const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');

function env(name, def) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (def === undefined) {
      console.error(`bench.js: ${name} is not set`);
      process.exit(2);
    }
    return def;
  }
  return v;
}

// BullMQ wants maxRetriesPerRequest null on the connections it blocks on.
function connect() {
  return new IORedis(env('REDIS_URL'), { maxRetriesPerRequest: null });
}

const platforms = ['TIKTOK', 'YOUTUBE', 'INSTAGRAM', 'FACEBOOK', 'TWITTER', 'LINKEDIN'];

async function enqueue() {
  const n = Number(env('TASKS'));
  if (!Number.isInteger(n) || n < 1) {
    console.error('bench.js: TASKS must be a whole number ≥ 1');
    process.exit(2);
  }
  const connection = connect();
  const queue = new Queue(env('BULLMQ_QUEUE'), { connection });
  // removeOnComplete: asynq deletes a finished task unless told to keep
  // it, so BullMQ is asked to do the same work.
  const opts = { removeOnComplete: true, removeOnFail: true };
  for (let i = 0; i < n; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      const data = { team_id: `team-${j % 1000}`, platform: platforms[j % platforms.length], enqueued_at: new Date().toISOString() };
      jobs.push({ name: 'bundle_social:profile_refresh', data, opts });
    }
    await queue.addBulk(jobs);
  }
  await queue.close();
  await connection.quit();
}

function post(agent, base, path, apiKey, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(base + path, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-api-key': apiKey },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function work() {
  const base = env('UPSTREAM');
  const stream = env('STREAM');
  const apiKey = env('API_KEY', 'bench-key');
  const queueName = env('BULLMQ_QUEUE');
  const concurrency = Number(env('CONCURRENCY', '50'));
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const results = connect();
  const workerName = `${os.hostname()}:${process.pid}`;

  const worker = new Worker(queueName, async (job) => {
    const d = job.data;
    const reply = await post(agent, base, '/api/v1/social-account/profile-refresh', apiKey,
      JSON.stringify({ type: d.platform, teamId: d.team_id }));
    if (reply.status < 200 || reply.status > 299) {
      throw new Error(`upstream answered ${reply.status}`);
    }
    const finished = new Date();
    const enqueued = new Date(d.enqueued_at);
    // The result entry refreshq writes: the same 17 fields.
    await results.xadd(stream, '*',
      'v', '1', 'task_id', job.id, 'task_type', job.name, 'queue', queueName,
      'provider', 'bundle_social', 'subject', `${d.team_id}/${d.platform}`, 'status', 'succeeded',
      'attempts', '1', 'http_status', String(reply.status), 'error_kind', '', 'error', '',
      'result', reply.body, 'meta', '{}', 'enqueued_at', enqueued.toISOString(),
      'finished_at', finished.toISOString(), 'duration_ms', String(finished - enqueued), 'worker', workerName);
  }, { connection: connect(), concurrency });
  worker.on('error', (err) => console.error('bench.js worker:', err.message));

  const stop = async () => {
    await worker.close();
    await results.quit();
    agent.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await worker.waitUntilReady();
  process.stdout.write('ready\n');
}

const cmd = process.argv[2];
const run = { enqueue, work }[cmd];
if (!run) {
  console.error('usage: node bench.js enqueue|work (see the comment at the top)');
  process.exit(2);
}
run().catch((err) => {
  console.error('bench.js:', err.message);
  process.exit(1);
});
