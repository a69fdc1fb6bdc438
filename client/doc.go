// Package client is refreshq's Go producer: it enqueues refreshes of
// bundle.social profiles and hooked.so accounts, one or many at a time, and
// reads their results from the results stream — one by task id, by waiting
// for it, by following the stream, or as a consumer group.
//
// Tasks are plain asynq tasks (see package tasks), so the worker runs them
// whoever enqueued them. What the client adds: validation before anything
// reaches Redis, task ids known before Redis is asked (so a failure mid-call
// leaves an id to check), uniqueness per provider and subject across all
// queues, and a bulk path that reports, per refresh, whether it was
// enqueued, skipped, not enqueued or is in doubt.
//
// It is not for running tasks (see the worker) or for publishing results
// (see results).
package client
