// Package cancel ends tasks before they run to their own end: it keeps
// the durable record of a cancel in Redis, removes a task that is waiting
// (pending, scheduled, retrying) and publishes its one cancelled result,
// and tells a running task's worker to stop and publish it.
//
// asynq's own cancellation of a running task travels by Redis pub/sub,
// which a worker misses while it is reconnecting. The record, one key per
// task, is what a worker believes: the handler reads it as the task
// begins, and a Watcher in every worker polls it for the tasks in flight,
// so a lost message delays a cancel by at most one poll.
//
// It is not the producer API (see client, cmd/enqueue and the HTTP API,
// which call it) and does not decide any other result (see handlers).
package cancel
