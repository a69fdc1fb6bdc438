package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/results"
)

const resultUsage = `Usage: enqueue result TASK_ID

Prints the task's latest result as one JSON object of the results stream
entry's fields. Exits 1 if it has none yet.

Example:
  enqueue result 3f6c0d2e-8a8f-4f0e-9d6c-1b2a3c4d5e6f
`

func runResult(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("result", flag.ContinueOnError)
	pos, err := parseFlags(fs, args, resultUsage, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] == "" {
		return usagef("result takes one task id, e.g. enqueue result 3f6c0d2e-8a8f-4f0e-9d6c-1b2a3c4d5e6f")
	}
	id := pos[0]
	cl, err := newClient(getenv)
	if err != nil {
		return err
	}
	defer cl.Close()
	entry, err := cl.Result(ctx, id)
	if errors.Is(err, results.ErrNoResult) {
		return noResult(ctx, cl, id)
	}
	if err != nil {
		return redisHint(err)
	}
	return printEntry(stdout, entry)
}

const resultsUsage = `Usage: enqueue results --follow [--from $|0|ID]

Prints results as they land, one JSON object a line, until interrupted.

Flags:
  --follow     follow the stream (required)
  --from ID    "$" (default) for new results only, "0" for the whole stream
               first, or a stream entry id to resume after

Examples:
  enqueue results --follow
  enqueue results --follow --from 0 | jq 'select(.status == "failed")'
`

// validFrom is what XREAD takes after --from.
var validFrom = regexp.MustCompile(`^(\$|\d+(-\d+)?)$`)

func runResults(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("results", flag.ContinueOnError)
	follow := fs.Bool("follow", false, "")
	from := fs.String("from", "$", "")
	pos, err := parseFlags(fs, args, resultsUsage, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q; results takes only flags (enqueue results -h)", pos[0])
	}
	if !*follow {
		return usagef("results needs --follow: enqueue results --follow (for one task: enqueue result TASK_ID)")
	}
	if !validFrom.MatchString(*from) {
		return usagef("--from %q is not $, 0 or a stream entry id such as 1700000000000-0", *from)
	}
	cl, err := newClient(getenv)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return redisHint(err)
	}
	err = cl.Follow(ctx, *from, func(_ context.Context, e results.Entry) error {
		return printEntry(stdout, e)
	})
	if ctx.Err() != nil {
		return nil // interrupted: the normal way to stop
	}
	return redisHint(err)
}

// noResult says why a task has no result, from where asynq holds it.
func noResult(ctx context.Context, cl *client.Client, id string) error {
	state, err := cl.TaskState(ctx, id)
	switch {
	case err != nil:
		return fmt.Errorf("no result yet for task %s: it is queued, scheduled, running or retrying (or its result has expired); try again later", id)
	case state == client.StateUnknown:
		return fmt.Errorf("no result for task %s, and no queue holds it: it was never enqueued on QUEUES, or it ended so long ago that its result expired (results are kept 7 days)", id)
	case state == client.StateArchived || state == client.StateCompleted:
		return fmt.Errorf("task %s has ended (%s in asynq) but its result is no longer kept", id, state)
	}
	return fmt.Errorf("no result yet for task %s: it is %s; try again later", id, stateWords[state])
}

// stateWords says a task state in a message.
var stateWords = map[client.TaskState]string{
	client.StatePending:   "pending (queued, waiting for a worker)",
	client.StateScheduled: "scheduled (--in/--at, not due yet)",
	client.StateActive:    "running",
	client.StateRetry:     "waiting to be tried again",
}
