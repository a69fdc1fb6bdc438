package client

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is what a test needs: a client on queues and a stream of its own.
type fixture struct {
	c      *Client
	rdb    redis.UniversalClient
	insp   *asynq.Inspector
	queue  string // allowed, and the default given to Enqueue
	queue2 string // allowed too
	stream string
	mini   *miniredis.Miniredis // nil against real Redis
	space  *redistest.Space
}

// setup uses the Redis at REDIS_URL when set (CI sets it), else miniredis.
// Queues, stream and subjects are unique to the test, and removed after it.
func setup(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	sp := redistest.NewSpace(t, 2)
	f := &fixture{space: sp, rdb: sp.RDB, insp: sp.Insp, queue: sp.Queues[0], queue2: sp.Queues[1], stream: sp.Stream, mini: sp.Mini}
	c, err := New(sp.URL, append([]Option{WithQueues(sp.Queues...), WithResultsStream(f.stream)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	t.Cleanup(func() { c.Close() })
	return f
}
