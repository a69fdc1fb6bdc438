package handlers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// sweepWindow is how long after asynq archived a task the sweeper still
// looks at it. It stays well inside results.DefaultIndexTTL, so a task
// swept once is never swept again once its index record has expired.
const sweepWindow = 24 * time.Hour

// sweepSkew is how far the sweeper looks back before its previous pass,
// for workers whose clocks disagree (asynq stamps the archive time with
// the archiving worker's clock).
const sweepSkew = time.Minute

// sweeper ends tasks that asynq archived without running a handler, so
// that they too get their one result. asynq's recoverer does that to a
// task whose worker died (lease expired) when the task was on its last
// asynq retry: refreshq's producers set MaxRetry far above MAX_RETRIES,
// but a task another service enqueued with asynq's defaults or
// MaxRetry(0) reaches it. Every task the handler ends carries
// retry.Final as its last error; any other archived task is the
// sweeper's, unless its current run already has a result.
//
// Every worker runs one; they may sweep the same task at once, which the
// exactly-once publish makes harmless.
type sweeper struct {
	h *Refresh

	// since is the archive time the next pass reads back to.
	since time.Time
}

// run sweeps every interval until ctx ends.
func (s *sweeper) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.sweep(ctx); err != nil {
			s.h.logger.Warn("sweeping archived tasks failed; trying again later", "err", err, "swept", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep makes one pass over the tasks archived since the last complete
// pass (at most sweepWindow ago) and publishes a failed result for each
// one whose current run has none. It returns how many it published.
func (s *sweeper) sweep(ctx context.Context) (int, error) {
	h := s.h
	start := h.now()
	since := start.Add(-sweepWindow)
	if s.since.After(since) {
		since = s.since
	}
	var (
		n    int
		errs []error
	)
	for _, q := range s.h.queues {
		m, err := s.sweepQueue(ctx, q, since)
		n += m
		if err != nil {
			errs = append(errs, fmt.Errorf("queue %s: %w", q, err))
		}
	}
	if len(errs) == 0 {
		// Tasks archived from now on are the next pass's.
		s.since = start.Add(-sweepSkew)
	}
	return n, errors.Join(errs...)
}

func (s *sweeper) sweepQueue(ctx context.Context, queue string, since time.Time) (int, error) {
	// The Inspector lists the archive oldest first and has no "archived
	// since"; asynq scores its archive by archive time, so the zset is read
	// directly (asynq's key layout, stable since v0.18; sweep_test.go
	// notices if it changes).
	ids, err := s.h.rdb.ZRangeByScore(ctx, archivedKey(queue), &redis.ZRangeBy{
		Min: strconv.FormatInt(since.Unix(), 10), Max: "+inf", Count: archiveCap,
	}).Result()
	if err != nil {
		return 0, fmt.Errorf("list archived tasks: %w", err)
	}
	n := 0
	for _, id := range ids {
		info, err := s.h.inspector.GetTaskInfo(queue, id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue // deleted or re-run meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("read archived task %s: %w", id, err)
		}
		if info.State != asynq.TaskStateArchived {
			continue
		}
		if _, ours := tasks.ProviderForType(info.Type); s.h.mounted && !ours {
			continue // another handler's task on a shared queue
		}
		if _, final := retry.FinalRun(info.LastErr); final {
			continue // the handler ended it, result and all
		}
		added, err := s.sweepTask(ctx, info)
		if err != nil {
			return n, err
		}
		if added {
			n++
		}
	}
	return n, nil
}

// archivedKey is asynq's sorted set of a queue's archived task ids, scored
// by the Unix second they were archived.
func archivedKey(queue string) string { return "asynq:{" + queue + "}:archived" }

// archiveCap is asynq's archive size limit (maxArchiveSize), so one pass
// reads at most one archive's worth of ids.
const archiveCap = 10000

// sweepTask publishes the result of an archived task's current run if it
// has none, and marks the run swept either way.
func (s *sweeper) sweepTask(ctx context.Context, info *asynq.TaskInfo) (bool, error) {
	h := s.h
	st, err := h.ledger.Begin(ctx, info.ID, h.now())
	if err != nil {
		return false, err
	}
	published, _, err := h.publisher.Published(ctx, info.ID)
	if err != nil {
		return false, err
	}
	if st.SweptRun >= st.Run {
		return false, nil // an earlier pass (of this or another worker)
	}
	added := false
	if published < st.Run {
		r := &run{id: info.ID, queue: info.Queue, task: asynq.NewTask(info.Type, info.Payload), state: st}
		ref, parseErr := tasks.Parse(info.Type, info.Payload)
		r.ref = ref
		r.enqueued, _ = h.window(r)
		e := h.entry(r, results.StatusFailed)
		e.ErrorKind, e.Error = sweptOutcome(info, st, parseErr)
		// Cancelled while it ran on a worker that then died: the cancel
		// is what ended it.
		actor, cancelled, err := h.cancels.Recorded(ctx, info.ID)
		if err != nil {
			return false, err
		}
		if cancelled {
			e.ErrorKind, e.Error = results.KindCancelled, cancel.Message(actor, "while it was running, on a worker that then stopped")
		}
		id, ok, err := h.publisher.Publish(ctx, e, st.Run, cancel.Key(info.ID))
		if err != nil {
			return false, err
		}
		if ok {
			added = true
			h.countFinished(e)
			h.logger.Warn("task archived by asynq without a result: published a failed one",
				"task_id", info.ID, "type", info.Type, "queue", info.Queue, "run", st.Run,
				"asynq_last_error", info.LastErr, "error_kind", e.ErrorKind, "entry", id)
		}
	}
	// After the publish: a crash in between leaves the task to the next
	// pass, whose publish then adds nothing.
	if err := h.ledger.Swept(ctx, info.ID, st.Run); err != nil {
		return added, err
	}
	return added, nil
}

// sweptOutcome is the error kind and message of a swept task's result:
// what its handler would have said, or the last error the ledger knows,
// or the lost connection to the worker that died.
func sweptOutcome(info *asynq.TaskInfo, st ledger.State, parseErr error) (results.ErrorKind, string) {
	if parseErr != nil {
		return payloadFailure(parseErr)
	}
	kind := results.KindNetwork
	if st.LastKind != "" {
		kind = results.ErrorKind(st.LastKind)
	}
	var msg string
	switch info.LastErr {
	case "":
		msg = "the task was archived before it ever failed (by hand, in the web UI or with the Inspector?), so it never ran to a result"
	case asynq.ErrLeaseExpired.Error():
		msg = fmt.Sprintf("the worker running the task stopped (killed, crashed or cut off from Redis) on its last asynq try (MaxRetry %d; refreshq's producers set %d), so asynq archived it without running it again", info.MaxRetry, tasks.DefaultMaxRetry)
	default:
		msg = fmt.Sprintf("asynq archived the task without a result (its last error: %s)", info.LastErr)
	}
	if st.LastError != "" {
		msg += "; last upstream error: " + st.LastError
	}
	return kind, msg
}
