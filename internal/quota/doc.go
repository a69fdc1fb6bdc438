// Package quota is the admission point before every upstream request: one
// call, [Engine.AdmitPipelined], one Lua script in the caller's Redis
// round trip, decides whether a task may send its next request now, and
// if not, why (its [Guard]) and for how long.
//
// In that script it creates or reads the task's ledger record, looks for
// the run's published result, checks the task's deadline, then the API
// key's guards (cooldown, breaker, daily cap; internal/ratelimit's rules),
// then the budget with its waiting line, and when all pass it records the
// admission and counts the attempt.
//
// The waiting line orders the tasks that wait for a slot of one API key's
// budget, fleet-wide: by lane (the task's queue, in priority order), and
// within a lane round-robin between tenants. A lower lane is kept a share
// of the grants (Options.Reserve) while it has tasks waiting, so it never
// starves. Only tasks whose wait is short enough to be slept in the worker
// (Options.LineWait) stand in the line; the others are handed back to
// asynq and stand in it again when they return. An entry holds a lease
// that each re-check renews, so a worker that dies leaves the line within
// a second of when its task was due.
//
// It does not send requests, sleep or publish results; after the request
// the caller reports to internal/ratelimit and publishes through results.
package quota
