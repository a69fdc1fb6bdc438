package enqueueapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/refreshq/refreshq/client"
)

// CancelResponse is the body of a DELETE answer other than 404 and 503.
type CancelResponse struct {
	TaskID string `json:"task_id"`
	// State is "cancelled" (200: Result is its cancelled result),
	// "cancelling" (202: running; its cancelled result lands within
	// seconds) or "ended" (409: it had ended; Result is the one that
	// stands, absent when it expired).
	State   string         `json:"state"`
	Message string         `json:"message"`
	Result  map[string]any `json:"result,omitempty"`
}

// cancel is DELETE /v1/refreshes/{task_id}. The client it was given names
// the actor ("HTTP") and how long it waits for a running task.
func (a *api) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task_id")
	outs, _ := a.c.Cancel(r.Context(), id)
	o := outs[0]
	resp := CancelResponse{TaskID: id, State: string(o.State)}
	if o.Result.Fields != nil {
		resp.Result = Typed(o.Result.Fields)
	}
	var ended *client.EndedError
	switch {
	case o.State == client.Cancelled:
		resp.Message = "cancelled: " + o.Result.Error
		a.log.Info("cancelled", "task_id", id)
		writeJSON(w, http.StatusOK, resp)
	case o.State == client.CancelRequested:
		resp.Message = "the task is running: its cancel is recorded and its cancelled result lands within seconds; GET this URL for it"
		a.log.Info("cancel requested", "task_id", id)
		writeJSON(w, http.StatusAccepted, resp)
	case errors.As(o.Err, &ended):
		resp.Message = ended.Error()
		writeJSON(w, http.StatusConflict, resp)
	case errors.Is(o.Err, client.ErrUnknownTask):
		writeErrors(w, http.StatusNotFound, Problem{Message: fmt.Sprintf("task %s is unknown: on no queue and without a result (never enqueued, or its result expired)", id)})
	default:
		a.log.Error("cancel", "task_id", id, "err", o.Err)
		writeErrors(w, http.StatusServiceUnavailable, Problem{Message: "Redis is unreachable; the task may or may not be cancelled; try again later"})
	}
}
