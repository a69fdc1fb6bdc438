// Command bench measures refreshq's worker against bare asynq on one Redis
// and one local upstream, and prints a Markdown report:
//
//	REDIS_URL=redis://127.0.0.1:6379/15 go run ./cmd/bench
//
// -priority and -rss add the priority-under-backlog check and the long RSS
// growth run. docs/benchmarks.md explains the numbers. The work is done by
// package bench/suite; this is only its command line.
package main
