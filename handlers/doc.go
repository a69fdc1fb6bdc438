// Package handlers runs refresh tasks: it validates the payload again,
// waits for the fleet's budget, calls the upstream, classifies the outcome
// into the results stream's error kinds, and either publishes the task's
// one result or asks asynq to run it again later.
//
// A handler ends every task itself. It asks asynq for another run only
// through the retry delay that ConfigureServer installs, and it counts the
// retry budget (MAX_RETRIES, 429s excluded) and the deadline
// (TASK_DEADLINE) in Redis, so asynq's own retry cap and curve never
// decide a task's fate.
//
// Package handlertest works a refresh through a mounted Refresh and a real
// asynq server in-process, for the tests of code that mounts it.
//
// It is not a client for producers (see package client), and it exposes
// neither its upstream HTTP clients nor its rate limiter: Config and
// Provider are how they are tuned.
package handlers
