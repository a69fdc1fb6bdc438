package handlers

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/tasks"
)

// hookedKey is the key testRefresh's hooked upstream is limited under.
var hookedKey = ratelimit.Key{Provider: tasks.ProviderHooked, KeyID: "k"}

// testRefresh returns a handler built by New, whose hooked upstream
// answers with call, on a ledger, stream and limiter of the test's own
// (their keys removed at the end), with what the tests share: no log,
// three retries a second apart, an hour's deadline, a millisecond's wait
// in place. Its Redis calls are batched, as the worker's are; a test sets
// what it varies (Refresh.redis to a redisbatch.Direct, say) before the
// first task. stream is the results stream's key.
func testRefresh(t *testing.T, call func(context.Context, tasks.Refresh) (clients.Response, error)) (h *Refresh, rdb redis.UniversalClient, stream string) {
	t.Helper()
	rdb, _ = redistest.Client(t)
	stream = redistest.Keys(t, rdb, "results")
	h, err := newRefresh(Config{
		Redis:         rdb,
		ResultsStream: stream,
		LaneReserve:   quota.DefaultReserve,
		MaxRetries:    3,
		RetryInitial:  time.Second,
		RetryMax:      time.Second,
		TaskDeadline:  time.Hour,
		Worker:        "test:1",
	}, keyPrefixes{
		ledger:  redistest.Keys(t, rdb, "ledger") + ":",
		limiter: redistest.Keys(t, rdb, "rl") + ":",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.upstreams[tasks.ProviderHooked] = upstream{Provider: tasks.ProviderHooked, Key: hookedKey, Call: call}
	h.inlineWait = time.Millisecond
	return h, rdb, stream
}
