// Command enqueue is refreshq's producer CLI: it enqueues refreshes (one, or
// many from a JSON Lines file) and prints results. Run `enqueue -h`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/refreshq/refreshq/internal/buildinfo"
	"github.com/refreshq/refreshq/internal/redisconn"
	"github.com/refreshq/refreshq/tasks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	redisconn.SilenceDialErrors()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "enqueue:", err)
		os.Exit(exitCode(err))
	}
}

// usageError is bad usage or invalid input: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitCode is 2 for bad usage or invalid input, 1 for anything else.
func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// topUsage lists every command: one per provider, from tasks' table,
// then the rest.
var topUsage = `enqueue enqueues refreshq refreshes and reads their results.

Usage:
` + oneSynopses() + `  enqueue file PATH|-            one refresh per JSON line
  enqueue result TASK_ID         a task's result
  enqueue cancel TASK_ID...      cancel tasks; each ends with a cancelled result
  enqueue results --follow       results as they land
  enqueue -version               the version

Run "enqueue COMMAND -h" for a command's flags and examples.

Environment:
  REDIS_URL       Redis to enqueue into (required), e.g. redis://127.0.0.1:6379
                  or redis://USER:PASSWORD@host:6379/0 (an ACL user)
  REDIS_SENTINEL_USERNAME, REDIS_SENTINEL_PASSWORD
                  the sentinels' own credentials, for redis-sentinel://
  REDIS_CA_CERT   PEM file of the CAs to trust for rediss://
  REDIS_URL_FILE  a file holding REDIS_URL instead (a mounted secret)
  QUEUES          queues workers serve, as the worker's: critical=6,default=3,low=1
  RESULTS_STREAM  results stream key (default refresh:results)

Exit status: 0 done, 1 runtime failure, 2 bad usage or invalid input.
`

// run is the whole command: tests call it with their own arguments,
// environment and buffers.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return usagef("no command given; use one of %s", commandList())
	}
	cmd, rest := args[0], args[1:]
	if one, ok := oneCommand(cmd); ok {
		return runOne(ctx, one, rest, getenv, stdout, stderr)
	}
	switch cmd {
	case "-version", "--version", "version":
		fmt.Fprintln(stdout, "enqueue", buildinfo.Read())
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, topUsage)
		return nil
	case "file":
		return runFile(ctx, rest, getenv, stdin, stdout, stderr)
	case "result":
		return runResult(ctx, rest, getenv, stdout, stderr)
	case "cancel":
		return runCancel(ctx, rest, getenv, stdout, stderr)
	case "results":
		return runResults(ctx, rest, getenv, stdout, stderr)
	}
	return usagef("unknown command %q; use one of %s (enqueue -h for help)", cmd, commandList())
}

// commandList names every command, for messages.
func commandList() string {
	var names []string
	for _, c := range tasks.Commands() {
		names = append(names, c.Name)
	}
	return strings.Join(append(names, "file", "result", "results", "cancel"), ", ")
}
