// Package handlers runs refresh tasks: it validates the payload again,
// waits for the fleet's budget, calls the upstream, classifies the outcome
// into the results stream's error kinds, and either publishes the task's
// one result or asks asynq to run it again later.
//
// A handler ends every task itself. asynq is told to retry only through
// retry.LaterError, and the retry budget (MAX_RETRIES, 429s excluded) and the
// deadline (TASK_DEADLINE) are counted in Redis by ledger, so asynq's own
// retry cap and curve never decide a task's fate.
//
// Package handlertest works a refresh through a mounted Refresh and a real
// asynq server in-process, for the tests of code that mounts it.
//
// It is not the HTTP client (see internal/clients) and not the limiter
// (see internal/ratelimit).
package handlers
