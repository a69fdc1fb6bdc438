// Package results is the results stream: its schema (fields, statuses,
// error kinds), the publisher the worker uses to add exactly one entry per
// finished task run, and the reader producers use to look a result up, wait
// for one, or follow the stream.
//
// Exactly once is a property of Publish, not of its callers: an entry is
// added in the same Lua script that marks the task's run as published, so a
// task delivered twice (asynq is at-least-once) cannot add a second entry.
//
// It is not for deciding what a result is (see handlers) or for consumer
// groups (see client).
package results
