package enqueueapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/tasks"
)

// EnqueueResponse is the body of a 202 answer, of a 409 answer, and of a
// 503 answer when Redis failed part-way through a batch.
type EnqueueResponse struct {
	// TaskIDs has one entry per refresh, in order: the task id, or null
	// when it was skipped as a duplicate (or, on 409 and 503, not
	// enqueued).
	TaskIDs []*string `json:"task_ids"`
	// Existing lists refreshes whose task_id already named the same
	// refresh: nothing was enqueued for them, and task_ids has that task.
	Existing []Existing `json:"existing,omitempty"`
	// Duplicates names, for each skipped refresh, the task it duplicates.
	Duplicates []Duplicate `json:"duplicates,omitempty"`
	// InDoubt lists refreshes that may or may not have been enqueued
	// (only on 503).
	InDoubt []InDoubt `json:"in_doubt,omitempty"`
	// NotEnqueued lists the indexes of refreshes that were not enqueued
	// (only on 409 and 503).
	NotEnqueued []int `json:"not_enqueued,omitempty"`
	// Errors says what failed (only on 409 and 503).
	Errors []Problem `json:"errors,omitempty"`
	// ErrorCount is how many problems there were (only with Errors).
	ErrorCount int `json:"error_count,omitempty"`
}

// Existing is a refresh whose task_id already named the same refresh.
type Existing struct {
	Index  int    `json:"index"`
	TaskID string `json:"task_id"`
}

// Duplicate is a refresh skipped under "unique".
type Duplicate struct {
	Index          int    `json:"index"`
	ExistingTaskID string `json:"existing_task_id"`
}

// InDoubt is a refresh whose enqueue was cut off by a Redis failure.
type InDoubt struct {
	Index  int    `json:"index"`
	TaskID string `json:"task_id"`
}

// item is one refresh of a request: a file line plus its own options.
type item struct {
	tasks.Refresh
	TaskID string
	Unique string
	In     string
	At     string
}

// onceConcurrency bounds the refreshes with a task_id enqueued at a time.
const onceConcurrency = 16

func (a *api) enqueue(w http.ResponseWriter, r *http.Request) {
	raws, err := readItems(w, r)
	if err != nil {
		var tooLarge *tooLargeError
		if errors.As(err, &tooLarge) {
			writeErrors(w, http.StatusRequestEntityTooLarge, Problem{Message: tooLarge.msg})
			return
		}
		writeErrors(w, http.StatusBadRequest, *problemOf(err))
		return
	}
	// Validate everything before enqueuing anything.
	now := time.Now()
	trace, tp := traceOption(r)
	if tp != nil {
		writeErrors(w, http.StatusBadRequest, *tp)
		return
	}
	p, bad := a.plan(raws, trace, now)
	if bad.count > 0 {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Errors: bad.list, ErrorCount: bad.count})
		return
	}

	ctx := r.Context()
	if err := a.c.Ping(ctx); err != nil {
		a.log.Error("enqueue: Redis unreachable", "err", err)
		writeErrors(w, http.StatusServiceUnavailable, Problem{Message: "Redis is unreachable; nothing was enqueued; retry later"})
		return
	}
	o := &outcome{resp: EnqueueResponse{TaskIDs: make([]*string, len(raws))}}
	a.enqueueGroups(ctx, p.groups, o)
	a.enqueueOnces(ctx, p.onces, o)
	a.answer(w, len(raws), o)
}

// plan is a request's refreshes, validated and sorted by how they are
// enqueued.
type plan struct {
	// groups hold the refreshes without a task_id: those with the same
	// options go in one concurrent batch. In order of first appearance.
	groups []*group
	// onces are the refreshes with a task_id, each enqueued on its own.
	onces []once
}

type group struct {
	opts    []client.EnqueueOption
	indexes []int
	rs      []tasks.Refresh
}

type once struct {
	index int
	id    string
	r     tasks.Refresh
	opts  []client.EnqueueOption
}

// plan decodes and validates every refresh; any problem means none is
// enqueued.
func (a *api) plan(raws []json.RawMessage, trace []client.EnqueueOption, now time.Time) (plan, problems) {
	var (
		p      plan
		bad    problems
		groups = map[string]*group{}
		ids    = map[string]int{}
	)
	for i, raw := range raws {
		it, prob := decodeItem(raw)
		var opts []client.EnqueueOption
		if prob == nil {
			opts, prob = itemOptions(it, now)
			opts = append(opts, trace...)
		}
		if prob == nil {
			if err := a.c.Validate(it.Refresh, opts...); err != nil {
				prob = problemOf(err)
			}
		}
		if prob == nil && it.TaskID != "" {
			if err := client.ValidateTaskID(it.TaskID); err != nil {
				prob = problemOf(err)
			} else if j, ok := ids[it.TaskID]; ok {
				prob = &Problem{Field: "task_id", Message: fmt.Sprintf("%q is also the task_id of refresh %d; give each refresh its own", it.TaskID, j)}
			}
			ids[it.TaskID] = i
		}
		if prob != nil {
			prob.Index = &i
			bad.add(*prob)
			continue
		}
		if it.TaskID != "" {
			p.onces = append(p.onces, once{index: i, id: it.TaskID, r: it.Refresh, opts: opts})
			continue
		}
		key := it.Unique + "|" + it.In + "|" + it.At
		g, ok := groups[key]
		if !ok {
			g = &group{opts: opts}
			groups[key] = g
			p.groups = append(p.groups, g)
		}
		g.indexes = append(g.indexes, i)
		g.rs = append(g.rs, it.Refresh)
	}
	return p, bad
}

// outcome is what a request's enqueues came to.
type outcome struct {
	mu        sync.Mutex // the task_id enqueues record concurrently
	resp      EnqueueResponse
	conflicts problems
	// failed is the Redis or context failure that stopped the enqueues
	// after it.
	failed error
}

// enqueueGroups enqueues each group as one batch, in order, until one
// fails.
func (a *api) enqueueGroups(ctx context.Context, groups []*group, o *outcome) {
	resp := &o.resp
	for _, g := range groups {
		if o.failed != nil {
			resp.NotEnqueued = append(resp.NotEnqueued, g.indexes...)
			continue
		}
		outs, err := a.c.EnqueueMany(ctx, g.rs, g.opts...)
		if outs == nil && err != nil {
			o.failed = err
			resp.NotEnqueued = append(resp.NotEnqueued, g.indexes...)
			continue
		}
		for j, out := range outs {
			i := g.indexes[j]
			switch out.State {
			case client.Enqueued:
				id := out.TaskID
				resp.TaskIDs[i] = &id
			case client.Duplicate:
				var d *client.DuplicateError
				if errors.As(out.Err, &d) {
					resp.Duplicates = append(resp.Duplicates, Duplicate{Index: i, ExistingTaskID: d.ExistingTaskID})
				}
			case client.InDoubt:
				resp.InDoubt = append(resp.InDoubt, InDoubt{Index: i, TaskID: out.TaskID})
			default:
				resp.NotEnqueued = append(resp.NotEnqueued, i)
			}
		}
		if err != nil {
			o.failed = err
		}
	}
}

// enqueueOnces enqueues the refreshes with a task_id, onceConcurrency at
// a time, starting none after a failure.
func (a *api) enqueueOnces(ctx context.Context, onces []once, o *outcome) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, onceConcurrency)
	for _, x := range onces {
		o.mu.Lock()
		stop := o.failed != nil
		if stop {
			o.resp.NotEnqueued = append(o.resp.NotEnqueued, x.index)
		}
		o.mu.Unlock()
		if stop {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			existing, err := a.c.EnqueueOnce(ctx, x.id, x.r, x.opts...)
			o.recordOnce(x, existing, err)
		}()
	}
	wg.Wait()
}

func (o *outcome) recordOnce(x once, existing bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	resp := &o.resp
	id := x.id
	var d *client.DuplicateError
	switch {
	case err == nil:
		resp.TaskIDs[x.index] = &id
		if existing {
			resp.Existing = append(resp.Existing, Existing{Index: x.index, TaskID: id})
		}
	case errors.Is(err, client.ErrTaskIDTaken):
		i := x.index
		o.conflicts.add(Problem{Index: &i, Field: "task_id", Message: err.Error()})
		resp.NotEnqueued = append(resp.NotEnqueued, x.index)
	case errors.As(err, &d):
		resp.Duplicates = append(resp.Duplicates, Duplicate{Index: x.index, ExistingTaskID: d.ExistingTaskID})
	case errors.Is(err, client.ErrInDoubt):
		resp.InDoubt = append(resp.InDoubt, InDoubt{Index: x.index, TaskID: id})
		o.failed = err
	default:
		resp.NotEnqueued = append(resp.NotEnqueued, x.index)
		o.failed = err
	}
}

// answer writes the outcome of n refreshes: 503 when Redis or the request
// failed part-way, 409 when a task_id was taken, 202 otherwise.
func (a *api) answer(w http.ResponseWriter, n int, o *outcome) {
	resp, conflicts, failed := o.resp, o.conflicts, o.failed
	sort.Slice(resp.Existing, func(x, y int) bool { return resp.Existing[x].Index < resp.Existing[y].Index })
	sort.Slice(resp.Duplicates, func(x, y int) bool { return resp.Duplicates[x].Index < resp.Duplicates[y].Index })
	sort.Slice(resp.InDoubt, func(x, y int) bool { return resp.InDoubt[x].Index < resp.InDoubt[y].Index })
	sort.Ints(resp.NotEnqueued)
	enqueued := n - len(resp.Existing) - len(resp.Duplicates) - len(resp.InDoubt) - len(resp.NotEnqueued)
	if failed != nil {
		a.log.Error("enqueue stopped", "refreshes", n, "enqueued", enqueued, "in_doubt", len(resp.InDoubt), "not_enqueued", len(resp.NotEnqueued), "err", failed)
		cause := "Redis failed"
		if errors.Is(failed, context.Canceled) {
			cause = "the request was cancelled"
		}
		resp.Errors = append([]Problem{{Message: cause + " part-way: task_ids has the refreshes enqueued; re-send those in not_enqueued, and look those in in_doubt up before re-sending them"}}, conflicts.list...)
		resp.ErrorCount = 1 + conflicts.count
		writeJSON(w, http.StatusServiceUnavailable, resp)
		return
	}
	if conflicts.count > 0 {
		sort.Slice(conflicts.list, func(x, y int) bool { return *conflicts.list[x].Index < *conflicts.list[y].Index })
		a.log.Info("enqueue: task ids taken", "refreshes", n, "enqueued", enqueued, "conflicts", conflicts.count)
		resp.Errors, resp.ErrorCount = conflicts.list, conflicts.count
		writeJSON(w, http.StatusConflict, resp)
		return
	}
	a.log.Info("enqueued", "refreshes", n, "enqueued", enqueued, "existing", len(resp.Existing), "duplicates", len(resp.Duplicates))
	writeJSON(w, http.StatusAccepted, resp)
}

// decodeItem decodes one refresh strictly, as `enqueue file` decodes a
// line: keys match exactly and once, also inside meta, and unknown keys
// and wrong types are field-level problems.
func decodeItem(raw json.RawMessage) (item, *Problem) {
	var it item
	r, err := tasks.Decode(raw, map[string]any{"task_id": &it.TaskID, "unique": &it.Unique, "in": &it.In, "at": &it.At})
	if err != nil {
		return it, problemOf(err)
	}
	if p := checkDuplicates(raw); p != nil {
		return it, p
	}
	it.Refresh = r
	return it, nil
}

// itemOptions turns an item's unique, in, at and deadline into client
// options.
func itemOptions(it item, now time.Time) ([]client.EnqueueOption, *Problem) {
	var opts []client.EnqueueOption
	if it.In != "" && it.At != "" {
		return nil, &Problem{Field: "at", Message: `"in" and "at" are both set; use one`}
	}
	due := now
	if it.Unique != "" {
		d, err := time.ParseDuration(it.Unique)
		if err != nil || d < time.Millisecond {
			return nil, &Problem{Field: "unique", Message: fmt.Sprintf("%s is not a window of at least 1ms; write a duration such as \"1h\" or \"30m\"", strconv.Quote(it.Unique))}
		}
		opts = append(opts, client.Unique(d))
	}
	if it.In != "" {
		d, err := time.ParseDuration(it.In)
		if err != nil || d < 0 {
			return nil, &Problem{Field: "in", Message: fmt.Sprintf("%s is not a delay; write a duration such as \"10m\"", strconv.Quote(it.In))}
		}
		opts = append(opts, client.In(d))
		due = now.Add(d)
	}
	if it.At != "" {
		t, err := time.Parse(time.RFC3339, it.At)
		if err != nil {
			return nil, &Problem{Field: "at", Message: fmt.Sprintf("%s is not an RFC 3339 time; write e.g. \"2026-05-01T09:00:00Z\"", strconv.Quote(it.At))}
		}
		opts = append(opts, client.At(t))
		if t.After(due) {
			due = t
		}
	}
	if d := it.Deadline; !d.IsZero() && !d.After(due) {
		return nil, &Problem{Field: "deadline", Message: fmt.Sprintf("%s is not after the task is due (%s); give a later deadline", d.UTC().Format(time.RFC3339), due.UTC().Format(time.RFC3339))}
	}
	return opts, nil
}

func problemOf(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var ve *tasks.ValidationError
	if errors.As(err, &ve) {
		return &Problem{Field: ve.Field, Message: ve.Problem}
	}
	return &Problem{Message: err.Error()}
}

// traceOption is the request's traceparent header as an enqueue option:
// the tasks continue the caller's trace. An invalid header is a 400, so a
// caller learns that its traces do not join.
func traceOption(r *http.Request) ([]client.EnqueueOption, *Problem) {
	v := r.Header.Get("traceparent")
	if v == "" {
		return nil, nil
	}
	if _, ok := tasks.TraceID(v); !ok {
		return nil, &Problem{Field: "traceparent", Message: fmt.Sprintf("header %q is not a W3C traceparent, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", v)}
	}
	return []client.EnqueueOption{client.Traceparent(v)}, nil
}
