package enqueueapi

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// MaxBodyBytes bounds a POST body; a larger one is answered 413.
const MaxBodyBytes = 10 << 20

// New returns the API's handler. Requests without "Authorization: Bearer
// token" are answered 401; an empty token refuses every request. A nil
// logger logs nothing.
func New(c *client.Client, token string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &api{c: c, token: []byte(token), log: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/refreshes", a.enqueue)
	mux.HandleFunc("GET /v1/refreshes/{task_id}", a.result)
	return a.auth(mux)
}

type api struct {
	c     *client.Client
	token []byte
	log   *slog.Logger
}

// Problem is one entry of an error response: what is wrong and, for a
// refresh of the body, which one (index) and which field.
type Problem struct {
	Index   *int   `json:"index,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Errors []Problem `json:"errors"`
}

// EnqueueResponse is the body of a 202 answer, and of a 503 answer when
// Redis failed part-way through a batch.
type EnqueueResponse struct {
	// TaskIDs has one entry per refresh, in order: the task id, or null
	// when it was skipped as a duplicate (or, on 503, not enqueued).
	TaskIDs []*string `json:"task_ids"`
	// Duplicates names, for each skipped refresh, the task it duplicates.
	Duplicates []Duplicate `json:"duplicates,omitempty"`
	// InDoubt lists refreshes that may or may not have been enqueued
	// (only on 503).
	InDoubt []InDoubt `json:"in_doubt,omitempty"`
	// NotEnqueued lists the indexes of refreshes that were not enqueued
	// (only on 503).
	NotEnqueued []int `json:"not_enqueued,omitempty"`
	// Errors says what failed (only on 503).
	Errors []Problem `json:"errors,omitempty"`
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

func (a *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || len(a.token) == 0 ||
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), a.token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="refreshq"`)
			writeErrors(w, http.StatusUnauthorized, Problem{Message: "missing or wrong bearer token: send Authorization: Bearer <ENQUEUE_TOKEN>"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *api) result(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task_id")
	_, m, err := a.c.Result(r.Context(), id)
	switch {
	case errors.Is(err, results.ErrNoResult):
		writeErrors(w, http.StatusNotFound, Problem{Message: fmt.Sprintf("no result yet for task %s: it is queued, scheduled, running or retrying (or its result has expired)", id)})
	case err != nil:
		a.log.Error("look up result", "task_id", id, "err", err)
		writeErrors(w, http.StatusServiceUnavailable, Problem{Message: "Redis is unreachable; try again later"})
	default:
		writeJSON(w, http.StatusOK, m)
	}
}

// item is one refresh of a request: a file line plus its own options.
type item struct {
	tasks.Refresh
	Unique string
	In     string
	At     string
}

func (a *api) enqueue(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeErrors(w, http.StatusRequestEntityTooLarge, Problem{Message: fmt.Sprintf("body is over %d bytes; split the batch", MaxBodyBytes)})
			return
		}
		writeErrors(w, http.StatusBadRequest, Problem{Message: "cannot read body: " + err.Error()})
		return
	}
	raws, prob := splitBody(body)
	if prob != nil {
		writeErrors(w, http.StatusBadRequest, *prob)
		return
	}

	// Validate everything before enqueuing anything.
	type group struct {
		opts    []client.EnqueueOption
		indexes []int
		rs      []tasks.Refresh
	}
	groups := map[string]*group{}
	var order []string
	var problems []Problem
	for i, raw := range raws {
		it, p := decodeItem(raw)
		var opts []client.EnqueueOption
		if p == nil {
			opts, p = itemOptions(it)
		}
		if p == nil {
			if err := a.c.Validate(it.Refresh, opts...); err != nil {
				p = problemOf(err)
			}
		}
		if p != nil {
			p.Index = &i
			problems = append(problems, *p)
			continue
		}
		// Refreshes with the same options go in one concurrent batch.
		key := it.Unique + "|" + it.In + "|" + it.At
		g, ok := groups[key]
		if !ok {
			g = &group{opts: opts}
			groups[key] = g
			order = append(order, key)
		}
		g.indexes = append(g.indexes, i)
		g.rs = append(g.rs, it.Refresh)
	}
	if len(problems) > 0 {
		writeErrors(w, http.StatusBadRequest, problems...)
		return
	}

	ctx := r.Context()
	if err := a.c.Ping(ctx); err != nil {
		a.log.Error("enqueue: Redis unreachable", "err", err)
		writeErrors(w, http.StatusServiceUnavailable, Problem{Message: "Redis is unreachable; nothing was enqueued; retry later"})
		return
	}
	resp := EnqueueResponse{TaskIDs: make([]*string, len(raws))}
	var failed error
	for _, key := range order {
		g := groups[key]
		if failed != nil {
			resp.NotEnqueued = append(resp.NotEnqueued, g.indexes...)
			continue
		}
		outs, err := a.c.EnqueueMany(ctx, g.rs, g.opts...)
		if outs == nil && err != nil {
			failed = err
			resp.NotEnqueued = append(resp.NotEnqueued, g.indexes...)
			continue
		}
		for j, o := range outs {
			i := g.indexes[j]
			switch o.State {
			case client.Enqueued:
				id := o.TaskID
				resp.TaskIDs[i] = &id
			case client.Duplicate:
				var d *client.DuplicateError
				if errors.As(o.Err, &d) {
					resp.Duplicates = append(resp.Duplicates, Duplicate{Index: i, ExistingTaskID: d.ExistingTaskID})
				}
			case client.InDoubt:
				resp.InDoubt = append(resp.InDoubt, InDoubt{Index: i, TaskID: o.TaskID})
			default:
				resp.NotEnqueued = append(resp.NotEnqueued, i)
			}
		}
		if err != nil {
			failed = err
		}
	}
	sort.Slice(resp.Duplicates, func(x, y int) bool { return resp.Duplicates[x].Index < resp.Duplicates[y].Index })
	sort.Slice(resp.InDoubt, func(x, y int) bool { return resp.InDoubt[x].Index < resp.InDoubt[y].Index })
	sort.Ints(resp.NotEnqueued)
	enqueued := len(raws) - len(resp.Duplicates) - len(resp.InDoubt) - len(resp.NotEnqueued)
	if failed != nil {
		a.log.Error("enqueue stopped", "refreshes", len(raws), "enqueued", enqueued, "in_doubt", len(resp.InDoubt), "not_enqueued", len(resp.NotEnqueued), "err", failed)
		cause := "Redis failed"
		if errors.Is(failed, context.Canceled) {
			cause = "the request was cancelled"
		}
		resp.Errors = []Problem{{Message: cause + " part-way: task_ids has the refreshes enqueued; re-send those in not_enqueued, and look those in in_doubt up before re-sending them"}}
		writeJSON(w, http.StatusServiceUnavailable, resp)
		return
	}
	a.log.Info("enqueued", "refreshes", len(raws), "enqueued", enqueued, "duplicates", len(resp.Duplicates))
	writeJSON(w, http.StatusAccepted, resp)
}

// splitBody returns the refreshes of a body that is one object or an
// array of them.
func splitBody(body []byte) ([]json.RawMessage, *Problem) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &Problem{Message: `body is empty; send a JSON object such as {"provider":"hooked","account_id":"a1"}, or an array of them`}
	}
	if !json.Valid(body) {
		return nil, &Problem{Message: "body is not valid JSON"}
	}
	switch body[0] {
	case '{':
		return []json.RawMessage{body}, nil
	case '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, &Problem{Message: "body is not valid JSON: " + err.Error()}
		}
		if len(raws) == 0 {
			return nil, &Problem{Message: "body is an empty array; send at least one refresh"}
		}
		return raws, nil
	}
	return nil, &Problem{Message: "body must be a JSON object or an array of objects"}
}

// decodeItem decodes one refresh strictly, as `enqueue file` decodes a
// line: keys match exactly, and unknown keys and wrong types are
// field-level problems.
func decodeItem(raw json.RawMessage) (item, *Problem) {
	var it item
	r, err := tasks.Decode(raw, map[string]any{"unique": &it.Unique, "in": &it.In, "at": &it.At})
	if err != nil {
		return it, problemOf(err)
	}
	it.Refresh = r
	return it, nil
}

// itemOptions turns an item's unique, in and at into client options.
func itemOptions(it item) ([]client.EnqueueOption, *Problem) {
	var opts []client.EnqueueOption
	if it.In != "" && it.At != "" {
		return nil, &Problem{Field: "at", Message: `"in" and "at" are both set; use one`}
	}
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
	}
	if it.At != "" {
		t, err := time.Parse(time.RFC3339, it.At)
		if err != nil {
			return nil, &Problem{Field: "at", Message: fmt.Sprintf("%s is not an RFC 3339 time; write e.g. \"2026-05-01T09:00:00Z\"", strconv.Quote(it.At))}
		}
		opts = append(opts, client.At(t))
	}
	return opts, nil
}

func problemOf(err error) *Problem {
	var ve *tasks.ValidationError
	if errors.As(err, &ve) {
		return &Problem{Field: ve.Field, Message: ve.Problem}
	}
	return &Problem{Message: err.Error()}
}

func writeErrors(w http.ResponseWriter, status int, ps ...Problem) {
	writeJSON(w, status, ErrorResponse{Errors: ps})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // messages quote <ENQUEUE_TOKEN>; this is not HTML
	_ = enc.Encode(v)
}
