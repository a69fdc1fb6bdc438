package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/tasks"
)

const fileUsage = `Usage: enqueue file PATH|- [flags]

Enqueues one refresh per line of a JSON Lines file ("-" reads stdin):

  {"provider":"bundle_social","team_id":"t1","platform":"TIKTOK"}
  {"provider":"hooked","account_id":"a1","queue":"critical","meta":{"batch":"b7"}}

Blank lines are skipped; any other key is an error. Every line is checked
first: if any is bad, all bad lines are listed and nothing is enqueued. Then
the lines are enqueued concurrently; the task ids are printed on stdout in
line order, and a summary on stderr. If Redis fails midway, stderr lists
the lines enqueued, not enqueued, and in doubt (with their task ids), and
the exit status is 1.

Flags (for every line; a line's own queue and meta win):
` + commonUsage + `  --wait DURATION     then wait up to this long for every result and print them
                      after the task ids, one JSON object a line in line order;
                      exit 1 if one failed or did not come

Examples:
  enqueue file refreshes.jsonl
  enqueue file refreshes.jsonl --unique 1h > task-ids.txt
  jq -c '{provider:"hooked",account_id:.id}' accounts.json | enqueue file - --queue low
`

// maxLine bounds one line; a valid one is far smaller (ids ≤ 512 bytes,
// meta ≤ 4 KiB).
const maxLine = 1 << 20

type fileLine struct {
	n int // 1-based line number in the file
	r tasks.Refresh
}

func runFile(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("file", flag.ContinueOnError)
	var c common
	c.register(fs)
	wait := fs.Duration("wait", 0, "")
	pos, err := parseFlags(fs, args, fileUsage, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("file takes one PATH, or - for stdin: enqueue file refreshes.jsonl")
	}
	if *wait < 0 {
		return usagef("--wait %s is negative; give how long to wait, e.g. --wait 2m", *wait)
	}
	opts, err := c.options(fs)
	if err != nil {
		return err
	}
	cl, err := newClient(getenv)
	if err != nil {
		return err
	}
	defer cl.Close()

	in, name := stdin, "stdin"
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return usagef("cannot read %v", err)
		}
		defer f.Close()
		in, name = f, pos[0]
	}
	lines, bad, err := readLines(in, cl, opts)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintln(stderr, b)
		}
		return usagef("%d bad line(s) in %s; nothing was enqueued: fix them and run again", len(bad), name)
	}
	if err := cl.Ping(ctx); err != nil {
		return redisHint(fmt.Errorf("%w; nothing was enqueued", err))
	}
	ids, err := enqueueLines(ctx, cl, lines, opts, stdout, stderr)
	if err != nil || *wait == 0 {
		return err
	}
	return waitAll(ctx, cl, ids, *wait, stdout)
}

// waitAll prints the result of each task in ids, in order, waiting up to
// wait in all. A failed result does not stop the others from printing.
func waitAll(ctx context.Context, cl *client.Client, ids []string, wait time.Duration, stdout io.Writer) error {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	failed := 0
	for _, id := range ids {
		err := printResult(wctx, cl, id, wait, stdout)
		var f *failedError
		switch {
		case errors.As(err, &f):
			failed++
		case err != nil:
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d tasks failed; their results are on stdout", failed, len(ids))
	}
	return nil
}

// readLines decodes and validates every line and returns the good ones, or
// a message per bad line.
func readLines(in io.Reader, cl *client.Client, opts []client.EnqueueOption) ([]fileLine, []string, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var (
		lines []fileLine
		bad   []string
		n     int
	)
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		r, err := tasks.Decode(b, nil) // strictly, as the HTTP API decodes an object
		if err == nil {
			err = cl.Validate(r, opts...)
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %v", n, err))
			continue
		}
		lines = append(lines, fileLine{n: n, r: r})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, append(bad, fmt.Sprintf("line %d: longer than %d bytes; is this a JSON Lines file?", n+1, maxLine)), nil
		}
		return nil, nil, err
	}
	return lines, bad, nil
}

// enqueueLines enqueues lines and returns the task ids of those enqueued,
// in line order.
func enqueueLines(ctx context.Context, cl *client.Client, lines []fileLine, opts []client.EnqueueOption, stdout, stderr io.Writer) ([]string, error) {
	rs := make([]tasks.Refresh, len(lines))
	for i, l := range lines {
		rs[i] = l.r
	}
	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	ids := newOrderedIDs(out, len(rs))

	bar := newProgress(stderr, len(rs))
	start := time.Now()
	outcomes, err := cl.EnqueueMany(ctx, rs, append(opts, client.Progress(func(o client.Outcome) {
		ids.add(o)
		bar.add()
	}))...)
	elapsed := time.Since(start)
	bar.done(err == nil)
	ids.rest()
	if ferr := out.Flush(); ferr != nil && err == nil {
		return nil, fmt.Errorf("write task ids: %w", ferr)
	}
	if err != nil && outcomes == nil {
		return nil, err // validated already, so not expected
	}

	var enq, dup, doubt, not []int
	var taskIDs []string
	for i, o := range outcomes {
		n := lines[i].n
		switch o.State {
		case client.Enqueued:
			enq = append(enq, n)
			taskIDs = append(taskIDs, o.TaskID)
		case client.Duplicate:
			dup = append(dup, n)
			var d *client.DuplicateError
			if errors.As(o.Err, &d) {
				fmt.Fprintf(stderr, "duplicate: line %d: %s %s was already enqueued as task %s within the unique window; skipped\n", n, d.Provider, d.Subject, d.ExistingTaskID)
			}
		case client.InDoubt:
			doubt = append(doubt, i)
		default:
			not = append(not, n)
		}
	}
	secs := elapsed.Seconds()
	fmt.Fprintf(stderr, "enqueued %d, duplicates %d in %.2f s (%.0f tasks/s)\n", len(enq), len(dup), secs, float64(len(enq)+len(dup))/max(secs, 1e-9))
	if err == nil {
		return taskIDs, nil
	}

	fmt.Fprintln(stderr, err)
	fmt.Fprintf(stderr, "  enqueued:     %s (their task ids are on stdout)\n", lineRanges(enq))
	if len(dup) > 0 {
		fmt.Fprintf(stderr, "  duplicates:   %s\n", lineRanges(dup))
	}
	if len(doubt) > 0 {
		ns := make([]int, len(doubt))
		for j, i := range doubt {
			ns[j] = lines[i].n
		}
		fmt.Fprintf(stderr, "  in doubt:     %s (may or may not be enqueued; look these task ids up in the asynq web UI before re-sending them)\n", lineRanges(ns))
		for _, i := range doubt {
			fmt.Fprintf(stderr, "    line %d: task %s\n", lines[i].n, outcomes[i].TaskID)
		}
	}
	fmt.Fprintf(stderr, "  not enqueued: %s\n", lineRanges(not))
	return nil, redisHint(fmt.Errorf("enqueued %d of %d lines before Redis failed; re-send the lines not enqueued (running the file again with --unique skips those already enqueued)", len(enq), len(lines)))
}

// lineRanges writes sorted line numbers compactly: "lines 1-500, 503".
func lineRanges(ns []int) string {
	if len(ns) == 0 {
		return "none"
	}
	var b strings.Builder
	if len(ns) == 1 {
		b.WriteString("line ")
	} else {
		b.WriteString("lines ")
	}
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(ns[i]))
		if j > i {
			b.WriteString("-")
			b.WriteString(strconv.Itoa(ns[j]))
		}
		i = j + 1
	}
	return b.String()
}

// orderedIDs prints enqueued task ids in line order as soon as every
// earlier line's outcome is known, though outcomes arrive out of order.
type orderedIDs struct {
	w    *bufio.Writer
	done []bool
	ids  []string
	next int
}

func newOrderedIDs(w *bufio.Writer, n int) *orderedIDs {
	return &orderedIDs{w: w, done: make([]bool, n), ids: make([]string, n)}
}

// add records o; calls must not overlap (client.Progress serialises them).
func (o *orderedIDs) add(out client.Outcome) {
	o.done[out.Index] = true
	if out.State == client.Enqueued {
		o.ids[out.Index] = out.TaskID
	}
	for o.next < len(o.done) && o.done[o.next] {
		if id := o.ids[o.next]; id != "" {
			o.w.WriteString(id)
			o.w.WriteByte('\n')
			o.ids[o.next] = ""
		}
		o.next++
	}
}

// rest prints the ids not printed yet: those after a line that never got
// an outcome (not attempted after a failure).
func (o *orderedIDs) rest() {
	for ; o.next < len(o.done); o.next++ {
		if id := o.ids[o.next]; id != "" {
			o.w.WriteString(id)
			o.w.WriteByte('\n')
		}
	}
}

// progress is a bar on stderr when stderr is a terminal, else nothing.
type progress struct {
	p     *mpb.Progress
	bar   *mpb.Bar
	total int64
	n     int64
}

func newProgress(stderr io.Writer, total int) *progress {
	f, ok := stderr.(*os.File)
	if !ok || total == 0 {
		return &progress{}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return &progress{}
	}
	p := mpb.New(mpb.WithOutput(f), mpb.WithWidth(40))
	bar := p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name("enqueue "), decor.CountersNoUnit("%d / %d")),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.AverageSpeed(nil, " %.0f/s"), decor.Name(" eta "), decor.AverageETA(decor.ET_STYLE_GO)),
	)
	return &progress{p: p, bar: bar, total: int64(total)}
}

// add counts one outcome; the bar is moved in steps to keep it cheap at
// tens of thousands of tasks a second.
func (p *progress) add() {
	if p.bar == nil {
		return
	}
	p.n++
	if p.n%256 == 0 {
		p.bar.SetCurrent(p.n)
	}
}

func (p *progress) done(ok bool) {
	if p.bar == nil {
		return
	}
	if ok {
		p.bar.SetCurrent(p.total)
	} else {
		p.bar.Abort(false)
	}
	p.p.Wait()
}
