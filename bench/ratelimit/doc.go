// Package ratelimit measures how much of an upstream's quota a fleet of
// real worker processes uses under a shared budget, and how often it still
// gets a 429: BenchmarkFleetQuota starts 3 cmd/worker processes against
// the upstream simulator enforcing 100 requests/s, with HOOKED_RATE=100/1s,
// and reports the share of the quota used and the share of 429s.
//
// It is a benchmark, not a test: it asserts nothing, and its numbers
// depend on the machine (see docs/ratelimit.md for how to run it and
// the last numbers measured).
package ratelimit
