package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// common are the flags every enqueueing command takes.
type common struct {
	queue  string
	in     time.Duration
	at     string
	unique time.Duration
	meta   string
	tenant string
	// traceparent: the W3C trace the tasks continue (tasks/traceparent.go).
	traceparent string
}

const commonUsage = `  --queue NAME        queue to enqueue on, one of QUEUES (default "default")
  --in DURATION       run no sooner than this from now, e.g. 10m
  --at RFC3339        run no sooner than this time, e.g. 2026-05-01T09:00:00Z
  --unique DURATION   skip if the same provider and subject was enqueued within
                      this window, on any queue (prints "duplicate ..." on stderr)
  --meta JSON         JSON object (at most 4 KiB) copied to the result
  --tenant NAME       who the refresh is for: tenants of one queue share its
                      budget round-robin (lines that name no tenant get it)
  --traceparent TP    W3C trace context the task continues, e.g.
                      00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01;
                      the worker's spans join that trace, the result's
                      trace_id names it
`

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.queue, "queue", "", "")
	fs.DurationVar(&c.in, "in", 0, "")
	fs.StringVar(&c.at, "at", "", "")
	fs.DurationVar(&c.unique, "unique", 0, "")
	fs.StringVar(&c.meta, "meta", "", "")
	fs.StringVar(&c.tenant, "tenant", "", "")
	fs.StringVar(&c.traceparent, "traceparent", "", "")
}

// options checks the flags on their own and turns them into client options.
func (c *common) options(fs *flag.FlagSet) ([]client.EnqueueOption, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var opts []client.EnqueueOption
	if set["queue"] {
		if c.queue == "" {
			return nil, usagef("--queue is empty; name a queue, e.g. --queue default")
		}
		opts = append(opts, client.Queue(c.queue))
	}
	if set["in"] && set["at"] {
		return nil, usagef("--in and --at are both set; use one: --in 10m, or --at 2026-05-01T09:00:00Z")
	}
	if set["in"] {
		if c.in < 0 {
			return nil, usagef("--in %s is negative; give a delay from now, e.g. --in 10m", c.in)
		}
		opts = append(opts, client.In(c.in))
	}
	if set["at"] {
		t, err := time.Parse(time.RFC3339, c.at)
		if err != nil {
			return nil, usagef("--at %q is not an RFC 3339 time; write e.g. --at 2026-05-01T09:00:00Z", c.at)
		}
		opts = append(opts, client.At(t))
	}
	if set["unique"] {
		if c.unique < time.Millisecond {
			return nil, usagef("--unique %s is too short; give a window of at least 1ms, e.g. --unique 1h", c.unique)
		}
		opts = append(opts, client.Unique(c.unique))
	}
	if set["meta"] {
		opts = append(opts, client.Meta(json.RawMessage(c.meta)))
	}
	if set["tenant"] {
		if c.tenant == "" {
			return nil, usagef("--tenant is empty; name a tenant, e.g. --tenant acme, or leave the flag out")
		}
		opts = append(opts, client.Tenant(c.tenant))
	}
	if set["traceparent"] {
		if _, ok := tasks.TraceID(c.traceparent); !ok {
			return nil, usagef("--traceparent %q is not a W3C traceparent; write e.g. --traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", c.traceparent)
		}
		opts = append(opts, client.Traceparent(c.traceparent))
	}
	return opts, nil
}

// oneCommand finds the provider command named name.
func oneCommand(name string) (tasks.Command, bool) {
	for _, c := range tasks.Commands() {
		if c.Name == name {
			return c, true
		}
	}
	return tasks.Command{}, false
}

// oneSynopses are the usage lines of the provider commands.
func oneSynopses() string {
	var b strings.Builder
	for _, c := range tasks.Commands() {
		fmt.Fprintf(&b, "  enqueue %s %s [flags]\n", c.Name, c.Synopsis())
	}
	return b.String()
}

// oneUsage is a provider command's -h text.
func oneUsage(c tasks.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: enqueue %s %s [flags]\n\n", c.Name, c.Synopsis())
	b.WriteString(wrap("Enqueues a refresh of "+c.Summary+" and prints the task id.", 72))
	b.WriteString("\n\nFlags:\n")
	for _, f := range c.Flags {
		arg := f.Arg
		if f.ListArg != "" {
			arg = f.ListArg
		}
		fmt.Fprintf(&b, "  %-19s %s\n", "--"+f.Name+" "+arg, f.Usage)
	}
	b.WriteString(commonUsage)
	b.WriteString(`  --wait DURATION     then wait up to this long for the result and print it as
                      one JSON object; exit 1 if it failed or did not come

Examples:
`)
	for _, e := range c.Examples {
		fmt.Fprintf(&b, "  enqueue %s %s\n", c.Name, e)
	}
	return b.String()
}

// wrap breaks text into lines of at most width bytes at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(text) {
		switch {
		case i == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// commonFlagOf names the flag that sets a payload field every enqueueing
// command takes, for messages; a command's subject flags add to it.
var commonFlagOf = map[string]string{
	"queue":  "--queue",
	"meta":   "--meta",
	"tenant": "--tenant",
}

func runOne(ctx context.Context, one tasks.Command, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := one.Name
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var (
		c    common
		wait time.Duration
	)
	c.register(fs)
	fs.DurationVar(&wait, "wait", 0, "")
	subject := make([]string, len(one.Flags))
	for i, f := range one.Flags {
		fs.StringVar(&subject[i], f.Name, "", "")
	}
	pos, err := parseFlags(fs, args, oneUsage(one), stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q; %s takes only flags (enqueue %s -h)", pos[0], cmd, cmd)
	}
	opts, err := c.options(fs)
	if err != nil {
		return err
	}
	if wait < 0 {
		return usagef("--wait %s is negative; give how long to wait, e.g. --wait 2m", wait)
	}
	values := make(map[string]string, len(one.Flags))
	for i, f := range one.Flags {
		values[f.Field] = subject[i]
	}
	r, err := tasks.NewRefresh(one.Provider, values)
	if err != nil {
		return err
	}

	cl, err := newClient(getenv)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Validate(r, opts...); err != nil {
		return usagef("%s", flagMessage(one, err))
	}
	if err := cl.Ping(ctx); err != nil {
		return redisHint(err)
	}
	id, err := cl.Enqueue(ctx, r, opts...)
	var dup *client.DuplicateError
	switch {
	case errors.As(err, &dup):
		fmt.Fprintln(stderr, dup.Error())
		return nil
	case errors.Is(err, client.ErrInDoubt):
		return fmt.Errorf("%w; look task %s up in the asynq web UI before enqueuing again", err, id)
	case err != nil:
		return redisHint(err)
	}
	fmt.Fprintln(stdout, id)
	if wait == 0 {
		return nil
	}
	return waitAndPrint(ctx, cl, id, wait, stdout)
}

// flagMessage rewrites a payload validation error in terms of one's flags.
func flagMessage(one tasks.Command, err error) string {
	var ve *tasks.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	for _, f := range one.Flags {
		if f.Field == ve.Field {
			return "--" + f.Name + " " + ve.Problem
		}
	}
	if f, ok := commonFlagOf[ve.Field]; ok {
		return f + " " + ve.Problem
	}
	return err.Error()
}

func waitAndPrint(ctx context.Context, cl *client.Client, id string, wait time.Duration, stdout io.Writer) error {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return printResult(wctx, cl, id, wait, stdout)
}

// failedError is a task whose result says it failed.
type failedError struct{ id, kind, msg string }

func (e *failedError) Error() string {
	return fmt.Sprintf("task %s failed: %s: %s", e.id, e.kind, e.msg)
}

// printResult waits, until ctx ends, for the result of task id and prints
// it; wait is the whole wait, for messages. A failed result is a
// *failedError.
func printResult(ctx context.Context, cl *client.Client, id string, wait time.Duration, stdout io.Writer) error {
	entry, err := cl.Wait(ctx, id)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no result for task %s within %s; it is still queued, scheduled or retrying: check later with \"enqueue result %s\"", id, wait, id)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("interrupted while waiting for task %s; it stays enqueued: check later with \"enqueue result %s\"", id, id)
	case err != nil:
		return redisHint(fmt.Errorf("wait for task %s: %w", id, err))
	}
	if err := printEntry(stdout, entry); err != nil {
		return err
	}
	if !entry.Succeeded() {
		return &failedError{id: id, kind: string(entry.ErrorKind), msg: entry.Error}
	}
	return nil
}

// printEntry prints a result as one JSON object of the stream entry's
// fields, every one as stored, on one line.
func printEntry(w io.Writer, e results.Entry) error {
	b, err := json.Marshal(e.Fields)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}
