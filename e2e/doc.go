// Package e2e holds end-to-end tests: they build cmd/worker and cmd/enqueue,
// run them as real processes against a real Redis (REDIS_URL) and the
// upstream simulator served from the test process, and check what another
// team would see: the results stream, the upstream's request log, exit
// codes and messages.
//
// The tests need REDIS_URL (CI sets it): without it they are skipped, and
// under CI=true they fail (internal/testenv). Each
// test takes a Redis database of its own (1 to 15) and flushes it, so the
// fleet-wide state (breakers, budgets) of one test never leaks into
// another; the rest of the repository's tests use database 0.
package e2e
