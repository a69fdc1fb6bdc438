// Package client is refreshq's Go producer: it enqueues refreshes of
// bundle.social profiles and hooked.so accounts, one or many at a time,
// cancels them, and reads their results.
//
// Tasks are plain asynq tasks (see package tasks), so the worker runs them
// whoever enqueued them. What the client adds: validation before anything
// reaches Redis, task ids known before Redis is asked (so a failure mid-call
// leaves an id to check), uniqueness per provider and subject across all
// queues, and a bulk path that reports, per refresh, whether it was
// enqueued, skipped, not enqueued or is in doubt.
//
// Reading results belongs to package results. A Client's Result, Wait,
// Follow and Consume are its results.Reader's methods on the Client's own
// connection pool and stream, kept so that a producer enqueues and reads
// with one value and Close; they take and return results' types. Trimming
// the stream is the workers' job (results.Trim), so the Client has none.
//
// It is not for running tasks (see the worker) or for publishing results
// (see results).
package client
