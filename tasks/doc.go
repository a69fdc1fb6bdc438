// Package tasks is the contract between producers and workers: the task type
// names, their JSON payloads, validation, and constructors that give every
// task refreshq's default options.
//
// One table holds the providers: each one's task type, the fields naming
// its subject, and the `enqueue` command and flags that take them
// (Commands). Every producer, decoder and the worker read it.
//
// Type names are stored in Redis with every task, so they never change once
// shipped. The same Validate runs in the producer and again in the worker,
// because any service that speaks asynq may enqueue these types directly.
//
// It is not for running tasks (see handlers) or talking to Redis (see client).
package tasks
