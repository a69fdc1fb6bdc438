package handlers

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// hookedKey is the key testRefresh's hooked upstream is limited under.
var hookedKey = ratelimit.Key{Provider: tasks.ProviderHooked, KeyID: "k"}

// testRefresh returns a handler whose hooked upstream answers with call,
// on a ledger, stream and limiter of the test's own (their keys removed
// at the end), with what the tests share: no log, three retries a second
// apart, an hour's deadline, a millisecond's wait in place. A test sets
// what it varies, then calls withQuota.
func testRefresh(t *testing.T, call func(context.Context, tasks.Refresh) (clients.Response, error)) (*Refresh, redis.UniversalClient) {
	t.Helper()
	rdb, _ := redistest.Client(t)
	stream := redistest.Keys(t, rdb, "results")
	return &Refresh{
		ledger:    ledger.New(rdb, redistest.Keys(t, rdb, "ledger")+":", time.Hour),
		publisher: results.NewPublisher(rdb, stream, time.Hour),
		limiter:   ratelimit.New(rdb, ratelimit.Options{Prefix: redistest.Keys(t, rdb, "rl") + ":"}),
		logger:    slog.New(slog.DiscardHandler),
		upstreams: map[string]upstream{tasks.ProviderHooked: {
			Provider: tasks.ProviderHooked, Key: hookedKey, Call: call,
		}},
		policy:       retry.Policy{Initial: time.Second, Max: time.Second},
		maxRetries:   3,
		taskDeadline: time.Hour,
		inlineWait:   time.Millisecond,
		worker:       "test:1",
		now:          time.Now,
	}, rdb
}
