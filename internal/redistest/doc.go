// Package redistest gives every test that needs Redis its Redis, one way:
//
//   - URL, Client, ConnOpt: the real Redis named by REDIS_URL (CI sets it)
//     or, when unset, an embedded miniredis of the test's own.
//   - Name, Keys, Queue, NewSpace: names of the test's own in a shared
//     Redis (asynq has no key prefix), deleted with their keys at the end.
//   - Enqueue: refreshes on a queue, for tests of what reads the queues.
//   - Mini, MiniClient: a miniredis of the test's own whatever REDIS_URL
//     says, for a test that moves its clock, stops it, or flushes scripts.
//   - DB: a database of the real Redis of the test's own, flushed, for
//     processes that cannot be given names (the end-to-end stacks).
//   - StartServer, StartSentinel: a redis-server or a Sentinel on a free
//     port, for tests that kill, restart, persist or lock down Redis.
//
// It is for tests only.
package redistest
