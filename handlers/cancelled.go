package handlers

import (
	"context"

	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/results"
)

// A cancelled task ends with one cancelled result, whichever way the
// cancel reached its worker:
//
//   - the cancel record exists as the task begins: no request is sent;
//   - asynq's pub/sub cancel, or the Watcher's poll of the record, ends
//     the run's context while it runs: whatever the in-flight request
//     returns is discarded, and the record says who cancelled it.
//
// A waiting task (pending, scheduled, retrying) is removed by the
// canceller itself (package cancel), which publishes its result.

// cancelledAtBegin ends a task whose cancel was recorded before it ran.
func (h *Refresh) cancelledAtBegin(ctx context.Context, r *run, actor string) error {
	if r.counted {
		// begin counted a request that will not be sent.
		n, err := h.ledger.Uncount(ctx, r.id)
		if err != nil {
			return h.redisTrouble(r, err)
		}
		r.state.Attempts, r.counted = n, false
	}
	msg := cancel.Message(actor, "before its worker sent a request")
	if _, err := h.publishCancelled(ctx, r, msg); err != nil {
		return err
	}
	r.log.Info("task cancelled before it ran", "by", actor)
	return retry.Final(r.state.Run, msg)
}

// interrupted decides the end of a run whose context ended under it:
// cancelled, when the task's cancel record exists; otherwise the worker is
// stopping (or asynq's timeout hit) and err, the run's own return, stands.
// ctx is the handler's own context, which a pub/sub cancel has ended too.
func (h *Refresh) interrupted(ctx context.Context, r *run, err error) error {
	if r.log == nil {
		return err // nothing is known of the task yet; its next run begins again
	}
	ctx = withTask(context.WithoutCancel(ctx), r)
	actor, ok, rerr := h.cancels.Recorded(ctx, r.id)
	if rerr != nil {
		return h.redisTrouble(r, rerr)
	}
	if !ok {
		if err != nil {
			// The task goes back to asynq, and this attempt is no failure.
			r.log.Info("interrupted; the task will run again", "err", err)
		}
		return err
	}
	msg := cancel.Message(actor, "while it was running; the outcome of its in-flight request, if any, was discarded")
	added, perr := h.publishCancelled(ctx, r, msg)
	if perr != nil {
		return perr
	}
	if !added {
		return err // the run published its own result first: it stands
	}
	r.log.Info("running task cancelled", "by", actor)
	return retry.Final(r.state.Run, msg)
}

// publishCancelled publishes the task's cancelled result and reports
// whether it was added (false: the run already had its result).
func (h *Refresh) publishCancelled(ctx context.Context, r *run, msg string) (bool, error) {
	e := h.entry(r, results.StatusFailed)
	e.ErrorKind = results.KindCancelled
	e.Error = msg
	id, added, err := h.publishEntry(ctx, r, e)
	if err != nil {
		return false, h.redisTrouble(r, err)
	}
	h.published(r, e, id, added)
	return added, nil
}
