// Package retry decides when a task runs again: the exponential backoff
// with jitter between failed tries, the error a handler returns to ask asynq
// for a re-run at a given time, and the asynq hooks (RetryDelayFunc,
// IsFailure) that honour it.
//
// refreshq owns its retry budget: handlers count tries in Redis and end
// every task themselves, so asynq's own retry count and curve are never the
// ones that decide. This package is not for counting (see ledger).
package retry
