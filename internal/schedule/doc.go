// Package schedule turns a schedule file (SCHEDULE_FILE, YAML or JSON) into
// periodic refresh tasks, enqueued once per period however many workers
// read the file.
//
// Parse and Load validate a file and report every bad entry at once, with
// its index, line and field, because a typo that silently disables a
// refresh is worse than a worker that refuses to start. A Runner enqueues
// each entry's current period with a task id made of the entry name and the
// period start, so the first worker to enqueue wins and the others get
// asynq.ErrTaskIDConflict; it re-reads the file when it changes and keeps
// the previous schedule when the new file is broken.
//
// It is not a general cron: it enqueues only the current period (a missed
// period is not made up later), and it does not run tasks.
package schedule
