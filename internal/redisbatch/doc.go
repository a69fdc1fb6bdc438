// Package redisbatch sends the Redis commands of many concurrent callers in
// shared pipelines: one write and one read for a batch of tasks instead of
// a round trip each. On a busy worker most of what a task costs beyond the
// upstream request is system calls to Redis (docs/benchmarks.md), and fifty
// handlers each waiting on their own round trip spend most of it twice.
//
// A call is sent as soon as one of a few flushers is free, never on a
// timer: an idle worker's single call goes out at once, and when every
// flusher has a batch in flight, the calls that queue up behind them leave
// together in the next. Each caller's
// commands keep their own replies and errors; a script in a batch is as
// atomic as it is on its own. Nothing is batched across a MULTI.
//
// It is not a cache and not a retry layer: a failed batch fails each of its
// calls, and the caller decides, as it would for its own round trip.
package redisbatch
