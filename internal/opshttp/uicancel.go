package opshttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/hibiken/asynq"
)

// CancelFunc cancels one task on the web UI's behalf, so that it ends with
// one cancelled result. It returns nil when the task is cancelled or its
// cancel is on its way (a running task), a *CancelRefusedError when nothing was
// changed, and any other error when Redis failed.
type CancelFunc func(ctx context.Context, taskID string) error

// CancelRefusedError says why a cancel changed nothing: the task had ended
// (Status 409) or is unknown (404).
type CancelRefusedError struct {
	Status  int
	Message string
}

func (e *CancelRefusedError) Error() string { return e.Message }

// The web UI can delete or archive a waiting task and cancel a running one,
// one at a time or in bulk. asynqmon would do it through asynq alone, and
// the task would end without a result (a delete), as whatever its last
// error was (an archive), or not at all (a cancel, which asynq hands back
// for another try). On the queues refreshq serves, these routes are
// answered here instead: each task is cancelled, so it ends with exactly
// one result whose error_kind is cancelled and whose error says "cancelled
// by UI". The answers keep asynqmon's shapes, so the UI needs no change.
// Archived and completed tasks have ended with their result: deleting them
// still goes to asynqmon, as does everything on other queues.

// uiCancel holds what the routes need.
type uiCancel struct {
	cancel CancelFunc
	queues []string
	insp   *asynq.Inspector
	log    *slog.Logger
}

// cancelRoute is a UI route turned into cancels: which tasks and how the
// answer is shaped.
type cancelRoute struct {
	queue, state  string // state: pending, scheduled, retry, active
	taskID        string // one task; "" for batch and all
	batch, all    bool
	okKey, errKey string // the batch answer's keys
	countKey      string // the all answer's key ("" answers 204)
}

// waitingStates are the collections whose delete and archive are cancels.
var waitingStates = []string{"pending", "scheduled", "retry"}

// parseCancelRoute recognises the UI's API routes that end waiting or
// running tasks. path is below MonitoringPath.
func parseCancelRoute(method, path string) (cancelRoute, bool) {
	rest, ok := strings.CutPrefix(path, MonitoringPath+"/api/queues/")
	if !ok {
		return cancelRoute{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return cancelRoute{}, false
	}
	rt := cancelRoute{queue: parts[0]}
	coll, action, _ := strings.Cut(parts[1], ":")
	state, ok := strings.CutSuffix(coll, "_tasks")
	if !ok {
		return cancelRoute{}, false
	}
	rt.state = state
	waiting := slices.Contains(waitingStates, state)
	if len(parts) == 3 {
		if action != "" {
			return cancelRoute{}, false
		}
		id, act := parts[2], ""
		if i := strings.LastIndex(id, ":"); i >= 0 && slices.Contains([]string{"archive", "cancel", "run"}, id[i+1:]) {
			id, act = id[:i], id[i+1:]
		}
		rt.taskID = id
		switch {
		case id == "":
			return cancelRoute{}, false
		case waiting && method == http.MethodDelete && act == "",
			waiting && method == http.MethodPost && act == "archive",
			state == "active" && method == http.MethodPost && act == "cancel":
			return rt, true
		}
		return cancelRoute{}, false
	}
	switch {
	case waiting && method == http.MethodPost && action == "batch_delete":
		rt.batch, rt.okKey, rt.errKey = true, "deleted_ids", "failed_ids"
	case waiting && method == http.MethodPost && action == "batch_archive":
		rt.batch, rt.okKey, rt.errKey = true, "archived_ids", "error_ids"
	case state == "active" && method == http.MethodPost && action == "batch_cancel":
		rt.batch, rt.okKey, rt.errKey = true, "canceled_ids", "error_ids"
	case waiting && method == http.MethodDelete && action == "delete_all":
		rt.all, rt.countKey = true, "deleted"
	case waiting && method == http.MethodPost && action == "archive_all":
		rt.all, rt.countKey = true, "archived"
	case state == "active" && method == http.MethodPost && action == "cancel_all":
		rt.all = true
	default:
		return cancelRoute{}, false
	}
	return rt, true
}

// wrap answers the cancel routes of c.queues and passes the rest to next.
func (c *uiCancel) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := parseCancelRoute(r.Method, r.URL.Path)
		if !ok || !slices.Contains(c.queues, rt.queue) {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case rt.taskID != "":
			c.one(w, r, rt)
		case rt.batch:
			c.batch(w, r, rt)
		default:
			c.everything(w, r, rt)
		}
	})
}

func (c *uiCancel) one(w http.ResponseWriter, r *http.Request, rt cancelRoute) {
	err := c.cancel(r.Context(), rt.taskID)
	var refused *CancelRefusedError
	switch {
	case err == nil:
		c.log.Info("web UI cancelled a task", "task_id", rt.taskID, "queue", rt.queue)
		w.WriteHeader(http.StatusNoContent)
	case errors.As(err, &refused):
		http.Error(w, refused.Message, refused.Status)
	default:
		c.log.Warn("web UI cancel failed", "task_id", rt.taskID, "err", err)
		http.Error(w, "cancel failed: "+err.Error(), http.StatusInternalServerError)
	}
}

// batchRequest is asynqmon's body for batch routes.
type batchRequest struct {
	TaskIDs []string `json:"task_ids"`
}

// maxBatchBody bounds a batch body as asynqmon does.
const maxBatchBody = 1 << 20

func (c *uiCancel) batch(w http.ResponseWriter, r *http.Request, rt cancelRoute) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBatchBody))
	dec.DisallowUnknownFields()
	var req batchRequest
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "body must be {\"task_ids\": [...]}: "+err.Error(), http.StatusBadRequest)
		return
	}
	done, failed := c.cancelEach(r.Context(), req.TaskIDs)
	writeUIJSON(w, map[string][]string{rt.okKey: done, rt.errKey: failed})
}

func (c *uiCancel) everything(w http.ResponseWriter, r *http.Request, rt cancelRoute) {
	ids, err := c.list(rt.queue, rt.state)
	if err != nil {
		http.Error(w, "list tasks: "+err.Error(), http.StatusInternalServerError)
		return
	}
	done, failed := c.cancelEach(r.Context(), ids)
	if len(failed) > 0 && len(done) == 0 {
		http.Error(w, fmt.Sprintf("none of the %d tasks could be cancelled", len(failed)), http.StatusInternalServerError)
		return
	}
	if rt.countKey == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeUIJSON(w, map[string]int{rt.countKey: len(done)})
}

// cancelEach cancels ids in order; a task that ended meanwhile counts as
// failed, as asynqmon counts a task it could not delete.
func (c *uiCancel) cancelEach(ctx context.Context, ids []string) (done, failed []string) {
	done, failed = []string{}, []string{}
	for _, id := range ids {
		if err := c.cancel(ctx, id); err != nil {
			failed = append(failed, id)
			continue
		}
		done = append(done, id)
	}
	if len(done) > 0 {
		c.log.Info("web UI cancelled tasks", "cancelled", len(done), "not_cancelled", len(failed))
	}
	return done, failed
}

// listPage is how many task ids one Inspector call reads.
const listPage = 500

// list returns the ids of every task of queue in state.
func (c *uiCancel) list(queue, state string) ([]string, error) {
	var ids []string
	for page := 1; ; page++ {
		opts := []asynq.ListOption{asynq.Page(page), asynq.PageSize(listPage)}
		var infos []*asynq.TaskInfo
		var err error
		switch state {
		case "pending":
			infos, err = c.insp.ListPendingTasks(queue, opts...)
		case "scheduled":
			infos, err = c.insp.ListScheduledTasks(queue, opts...)
		case "retry":
			infos, err = c.insp.ListRetryTasks(queue, opts...)
		case "active":
			infos, err = c.insp.ListActiveTasks(queue, opts...)
		}
		if err != nil {
			return ids, err
		}
		for _, info := range infos {
			ids = append(ids, info.ID)
		}
		if len(infos) < listPage {
			return ids, nil
		}
	}
}

func writeUIJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
