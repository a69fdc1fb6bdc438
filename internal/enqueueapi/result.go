package enqueueapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/results"
)

// MaxWait is the longest GET ?wait= may hold a request.
const MaxWait = 60 * time.Second

// NotFoundResponse is the body of a 404 from GET: the task has no result
// (yet), and State says where it is.
type NotFoundResponse struct {
	TaskID string `json:"task_id"`
	// State is pending, scheduled, active, retry, or unknown (never
	// enqueued, or ended so long ago that its result expired).
	State      string    `json:"state"`
	Errors     []Problem `json:"errors"`
	ErrorCount int       `json:"error_count"`
}

func (a *api) result(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task_id")
	wait, p := parseWait(r.URL.Query().Get("wait"))
	if p != nil {
		writeErrors(w, http.StatusBadRequest, *p)
		return
	}
	var (
		e   results.Entry
		err error
	)
	if wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		e, err = a.c.Wait(ctx, id)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
			err = results.ErrNoResult
		}
	} else {
		e, err = a.c.Result(r.Context(), id)
	}
	if errors.Is(err, results.ErrNoResult) {
		a.notFound(w, r, id)
		return
	}
	if err != nil {
		if r.Context().Err() != nil {
			return // the caller went away
		}
		a.log.Error("look up result", "task_id", id, "err", err)
		writeErrors(w, http.StatusServiceUnavailable, Problem{Message: "Redis is unreachable; try again later"})
		return
	}
	writeJSON(w, http.StatusOK, Typed(e.Fields))
}

// stateWords says each state of a task without a result in a sentence.
var stateWords = map[client.TaskState]string{
	client.StatePending:   "pending",
	client.StateScheduled: "scheduled",
	client.StateActive:    "running",
	client.StateRetry:     "waiting to be tried again",
}

// notFound answers 404 with where the task is.
func (a *api) notFound(w http.ResponseWriter, r *http.Request, id string) {
	st, err := a.c.TaskState(r.Context(), id)
	if err != nil {
		a.log.Error("look up task state", "task_id", id, "err", err)
		writeErrors(w, http.StatusServiceUnavailable, Problem{Message: "Redis is unreachable; try again later"})
		return
	}
	var msg string
	switch st {
	case client.StatePending, client.StateScheduled, client.StateActive, client.StateRetry:
		msg = fmt.Sprintf("task %s has no result yet: it is %s; ask again, or add ?wait=30s to wait for it", id, stateWords[st])
	default:
		// An ended task whose result is gone is as unknown as one never
		// enqueued: there is nothing more to learn about it.
		st = client.StateUnknown
		msg = fmt.Sprintf("task %s is unknown: it was never enqueued on this worker's queues, or it ended and its result has expired", id)
	}
	writeJSON(w, http.StatusNotFound, NotFoundResponse{TaskID: id, State: string(st), Errors: []Problem{{Message: msg}}, ErrorCount: 1})
}

// parseWait reads ?wait=: a Go duration ("30s") or whole seconds ("30"),
// at most MaxWait.
func parseWait(s string) (time.Duration, *Problem) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return 0, &Problem{Field: "wait", Message: fmt.Sprintf("%s is not a duration; write e.g. \"30s\"", strconv.Quote(s))}
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > MaxWait {
		return 0, &Problem{Field: "wait", Message: fmt.Sprintf("%s is not between 0s and %s", strconv.Quote(s), MaxWait)}
	}
	return d, nil
}

// Typed returns a results stream entry as the API answers it: the numeric
// fields as numbers, result and meta as the JSON they hold (result null
// when empty), every other field as the stream's string. Fields it does not
// know are kept as strings, so later schema versions pass through.
func Typed(m results.Map) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch k {
		case results.FieldV, results.FieldAttempts, results.FieldHTTPStatus, results.FieldDurationMS:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				n = 0
			}
			out[k] = n
		case results.FieldResult, results.FieldMeta:
			switch {
			case v == "" && k == results.FieldMeta:
				out[k] = json.RawMessage("{}")
			case v == "":
				out[k] = nil
			case json.Valid([]byte(v)):
				out[k] = json.RawMessage(v)
			default:
				out[k] = v
			}
		default:
			out[k] = v
		}
	}
	return out
}
