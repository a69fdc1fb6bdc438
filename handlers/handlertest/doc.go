// Package handlertest works refresh tasks through refreshq's handler
// in-process, for the tests of code that mounts it, and for refreshq's own.
//
// A Harness runs a real asynq server, configured by
// handlers.ConfigureServer, with a handlers.Refresh mounted by Register,
// against the Redis the test gives it. Work enqueues one refresh, waits
// for the handler's run to end and reports what a user would see: the
// task's asynq state, the error the handler returned and the task's
// result in the results stream. Again runs a task in retry now, through
// asynq's Inspector.RunTask, so a test does not wait out asynq's retry
// delay; the fleet's cooldowns in Redis still hold.
//
// It is not a fake: nothing in the handler knows it is being tested, and
// the fleet's state in Redis (budgets, cooldowns, the ledger) is as real as
// in production. It is not for multi-process behaviour (restarts, crashes,
// several workers): e2e tests run the binaries for that.
package handlertest
