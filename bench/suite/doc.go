// Package suite is refreshq's benchmark: it runs refreshq's worker binary
// as deployed (with BUNDLE_SOCIAL_RATE=off, and with a budget large enough
// never to refuse), a naive asynq handler that makes the same HTTP call and
// one XADD, and BullMQ doing the same job (bench/bullmq), side by side in
// interleaved rounds on one Redis and one local stand-in for bundle.social,
// and reports their rates as ratios, with Redis commands, CPU and
// allocations per task. Two scenarios measure what a user waits for under
// a saturated budget: critical tasks behind a backlog in low, and one
// tenant's tasks behind another's backlog.
//
// Every worker runs in a process of its own: the worker binary built from
// ./cmd/worker, the bench binary re-executed with -child for the naive and
// no-op handlers (which talk to the driver over stdin/stdout, one JSON
// object a line), and node for BullMQ.
//
// It is not a test: nothing here fails because a machine is slow. See
// docs/benchmarks.md for how to read and rerun it.
package suite
