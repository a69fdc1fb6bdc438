package ratelimit

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/fakeclock"
	"github.com/refreshq/refreshq/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is what a test needs: a Limiter on its own key prefix.
type fixture struct {
	lim   *Limiter
	rdb   redis.UniversalClient
	clock *fakeclock.Clock // nil unless the test asked for one
}

// setup returns a Limiter on the Redis at REDIS_URL, or on miniredis when
// it is unset, under a prefix no other test uses; its keys are deleted at
// cleanup. With fake set, decisions use a clock the test moves.
func setup(tb testing.TB, opt Options, fake bool) *fixture {
	tb.Helper()
	rdb, _ := redistest.Client(tb)
	opt.Prefix = redistest.Keys(tb, rdb, "refreshq:rl:test:") + ":"
	f := &fixture{rdb: rdb}
	if fake {
		// A fixed instant away from midnight, so day boundaries are deliberate.
		f.clock = fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		opt.Now = f.clock.Now
	}
	f.lim = New(rdb, opt)
	return f
}
