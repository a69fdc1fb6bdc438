// Package suite is refreshq's throughput benchmark: it runs bare asynq with
// a no-op handler (the ceiling), a naive asynq handler that makes the same
// HTTP call and one XADD, and refreshq's full worker (worker.Run) side by
// side, on one Redis and one local upstream, and reports tasks/s,
// enqueue-to-result latency, Redis commands and allocations per task and
// worker RSS. It also checks priority under a backlog and, on request,
// RSS growth over a long run.
//
// Each worker runs in a child process (the bench binary re-executed with
// -child), so its RSS and allocation counts are its own and not the load
// generator's. The driver talks to the child over stdin/stdout, one JSON
// object a line.
//
// It is not a test: nothing here fails because a machine is slow. See
// docs/benchmarks.md for how to read and rerun it.
package suite
