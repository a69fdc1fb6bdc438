package cancel

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrCancelled is the cause of a running task's context when its cancel
// record was found.
var ErrCancelled = errors.New("task cancelled")

// DefaultPollEvery is how often a Watcher reads the records of the tasks
// in flight: the most a cancel waits when asynq's pub/sub message is lost.
const DefaultPollEvery = time.Second

// Watcher cancels a running task's context when its cancel record
// appears. One per worker process; it costs one MGET per poll while
// tasks are in flight, and nothing while none are.
type Watcher struct {
	rdb    redis.UniversalClient
	every  time.Duration
	logger *slog.Logger

	mu      sync.Mutex
	running map[*watch]struct{}
}

type watch struct {
	taskID string
	cancel context.CancelCauseFunc
}

// NewWatcher returns a Watcher polling every interval (≤ 0:
// DefaultPollEvery). A nil logger discards.
func NewWatcher(rdb redis.UniversalClient, every time.Duration, logger *slog.Logger) *Watcher {
	if every <= 0 {
		every = DefaultPollEvery
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{rdb: rdb, every: every, logger: logger, running: map[*watch]struct{}{}}
}

// Watch returns a context derived from ctx that ends, with cause
// ErrCancelled, once a poll finds the task's cancel record. Call stop when
// the task's run ends.
func (w *Watcher) Watch(ctx context.Context, taskID string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	wt := &watch{taskID: taskID, cancel: cancel}
	w.mu.Lock()
	w.running[wt] = struct{}{}
	w.mu.Unlock()
	return ctx, func() {
		w.mu.Lock()
		delete(w.running, wt)
		w.mu.Unlock()
		cancel(nil)
	}
}

// Run polls until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.logger.Warn("reading cancel records failed; asynq's own cancel still reaches running tasks", "err", err)
		}
	}
}

// Poll reads the records of the tasks in flight once and cancels those
// that have one.
func (w *Watcher) Poll(ctx context.Context) error {
	w.mu.Lock()
	watches := make([]*watch, 0, len(w.running))
	for wt := range w.running {
		watches = append(watches, wt)
	}
	w.mu.Unlock()
	if len(watches) == 0 {
		return nil
	}
	keys := make([]string, len(watches))
	for i, wt := range watches {
		keys[i] = Key(wt.taskID)
	}
	vals, err := w.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return err
	}
	for i, v := range vals {
		if v != nil {
			watches[i].cancel(ErrCancelled)
		}
	}
	return nil
}

// Recorded is the package's Recorded on the Watcher's Redis.
func (w *Watcher) Recorded(ctx context.Context, taskID string) (actor string, ok bool, err error) {
	return Recorded(ctx, w.rdb, taskID)
}
