// Package worker assembles and runs one worker process from its
// configuration: the asynq server and the refresh handler, the HTTP surface
// (web UI, metrics, health, enqueue API), the schedule runner, and the
// order in which they stop on SIGTERM.
//
// cmd/worker parses flags and environment and calls Run; tests, the demo
// and the benchmarks call Run too, so they exercise the real assembly.
package worker
