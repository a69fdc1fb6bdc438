package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/refreshq/refreshq/client"
)

const cancelUsage = `Usage: enqueue cancel [--wait DURATION] TASK_ID...

Cancels each task. A pending, scheduled or retrying one is removed and its
one result (status failed, error_kind cancelled, error "cancelled by CLI
...") is published at once; a running one stops before its next upstream
request, and the outcome of the request in flight is discarded. For each
cancelled task, "TASK_ID cancelled" is printed on stdout.

A task that had already ended is left as it is, and said so on stderr.
A running task whose cancelled result has not landed within --wait is
reported as "cancelling" on stdout: it lands within seconds.

Flags:
  --wait DURATION   how long to wait for a running task's cancelled result
                    (default 10s; 0 does not wait)

Exit status: 0 when every task is cancelled, cancelling or had already
ended; 1 when a task id is unknown or Redis fails; 2 on bad usage.

Examples:
  enqueue cancel 3f6c0d2e-8a8f-4f0e-9d6c-1b2a3c4d5e6f
  enqueue cancel --wait 30s ID1 ID2
`

func runCancel(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cancel", flag.ContinueOnError)
	wait := fs.Duration("wait", client.DefaultCancelWait, "")
	pos, err := parseFlags(fs, args, cancelUsage, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("cancel takes one or more task ids, e.g. enqueue cancel 3f6c0d2e-8a8f-4f0e-9d6c-1b2a3c4d5e6f")
	}
	for _, id := range pos {
		if id == "" {
			return usagef("a task id is empty; give the ids enqueue printed")
		}
	}
	if *wait < 0 {
		return usagef("--wait %s is negative; give how long to wait, e.g. --wait 30s", *wait)
	}
	cl, err := newClient(getenv, client.WithActor("CLI"), client.WithCancelWait(*wait))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return redisHint(err)
	}
	outs, _ := cl.Cancel(ctx, pos...)
	failed := 0
	for _, o := range outs {
		var ended *client.EndedError
		switch {
		case o.State == client.Cancelled:
			fmt.Fprintf(stdout, "%s cancelled\n", o.TaskID)
		case o.State == client.CancelRequested:
			fmt.Fprintf(stdout, "%s cancelling\n", o.TaskID)
			fmt.Fprintf(stderr, "task %s is running: its cancel is recorded and its cancelled result lands within seconds (enqueue result %s)\n", o.TaskID, o.TaskID)
		case errors.As(o.Err, &ended):
			fmt.Fprintln(stderr, ended.Error())
		case errors.Is(o.Err, client.ErrUnknownTask):
			failed++
			fmt.Fprintf(stderr, "%v; check the id\n", o.Err)
		default:
			failed++
			fmt.Fprintln(stderr, redisHint(o.Err))
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d tasks were not cancelled (see above)", failed, len(outs))
	}
	return nil
}
