// Package results is the results stream, end to end: its schema (fields,
// statuses, error kinds), the publisher the worker uses to add exactly one
// entry per finished task run, the Reader that looks a result up, waits
// for one, follows the stream or consumes it as a consumer group, and Trim,
// which keeps the stream within its retention without deleting what a
// group still needs.
//
// Exactly once is a property of Publish, not of its callers: an entry is
// added in the same Lua script that marks the task's run as published, so a
// task delivered twice (asynq is at-least-once) cannot add a second entry.
//
// Every reader hands out an Entry, to callbacks of one shape,
// func(context.Context, Entry) error; an Entry read from the stream keeps
// its fields as stored (Entry.Fields) for code that passes them on.
//
// It is not for deciding what a result is (see handlers) or for enqueueing
// the tasks that produce one (see client).
package results
