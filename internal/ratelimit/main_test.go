package ratelimit_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/fakeclock"
	"github.com/refreshq/refreshq/internal/quota/quotatest"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is what a test needs: a Limiter on its own key prefix, and
// admission through the quota engine's script on its rules, as the
// worker asks before each request.
type fixture struct {
	lim    *ratelimit.Limiter
	prefix string
	admit  *quotatest.Admitter
	rdb    redis.UniversalClient
	clock  *fakeclock.Clock // nil unless the test asked for one
}

// setup returns a Limiter on the Redis at REDIS_URL, or on miniredis when
// it is unset, under a prefix no other test uses; its keys are deleted at
// cleanup. With fake set, decisions use a clock the test moves.
func setup(tb testing.TB, opt ratelimit.Options, fake bool) *fixture {
	tb.Helper()
	rdb, _ := redistest.Client(tb)
	opt.Prefix = redistest.Keys(tb, rdb, "refreshq:rl:test:") + ":"
	f := &fixture{rdb: rdb, prefix: opt.Prefix}
	if fake {
		// A fixed instant away from midnight, so day boundaries are deliberate.
		f.clock = fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		opt.Now = f.clock.Now
	}
	f.lim = ratelimit.New(rdb, opt)
	f.admit = quotatest.New(tb, rdb, f.lim)
	return f
}
