// Command bench measures refreshq's worker binary against a naive asynq
// handler and BullMQ doing the same job, on one Redis and one local
// upstream, and prints a Markdown report:
//
//	(cd bench/bullmq && npm ci)
//	REDIS_URL=redis://127.0.0.1:6379/15 go run ./cmd/bench
//
// Run it from the repository: it builds ./cmd/worker once and runs
// ./bench/bullmq. docs/benchmarks.md explains the numbers. The work is
// done by package bench/suite; this is only its command line.
package main
