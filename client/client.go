package client

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/redisconn"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// DefaultConcurrency is how many enqueues EnqueueMany keeps in flight. asynq
// has no batch command, so throughput comes from concurrent round trips over
// one connection pool.
const DefaultConcurrency = 64

// Client enqueues refreshes and reads their results. It is safe for
// concurrent use; create one per process and Close it when done.
type Client struct {
	rdb       redis.UniversalClient
	ownsRedis bool
	aq        *asynq.Client
	reader    *results.Reader
	stream    string
	queues    []string
	conc      int
	where     string // redacted address, for messages
	// taskDeadline is the workers' TASK_DEADLINE: how long EnqueueOnce's
	// claim on a task id must outlive the time the task is due.
	taskDeadline time.Duration
	// actor and cancelWait shape Cancel (cancel.go).
	actor      string
	cancelWait time.Duration
}

type settings struct {
	stream string
	queues []string
	conc   int

	taskDeadline time.Duration

	actor      string
	cancelWait *time.Duration
}

// Option configures a Client. An option given a value it cannot take
// makes New fail with an error that says which and why.
type Option func(*settings) error

// WithResultsStream sets the results stream's key (RESULTS_STREAM); the
// default is results.DefaultStream.
func WithResultsStream(name string) Option {
	return func(s *settings) error { s.stream = name; return nil }
}

// WithQueues sets the queues refreshes may be enqueued on: the names the
// workers' QUEUES lists (weights do not matter to a producer). The default
// is tasks.DefaultQueues. A refresh naming another queue is invalid: no
// worker would serve it.
func WithQueues(names ...string) Option {
	return func(s *settings) error {
		if len(names) == 0 {
			return errors.New("queue names: want one or more, e.g. " + strings.Join(tasks.DefaultQueues(), ", "))
		}
		for _, n := range names {
			if err := tasks.CheckQueueName(n); err != nil {
				return fmt.Errorf("queue names: %w", err)
			}
		}
		s.queues = slices.Clone(names)
		return nil
	}
}

// WithTaskDeadline tells the Client the workers' TASK_DEADLINE (default
// tasks.DefaultTaskDeadline), so a task id given to EnqueueOnce stays claimed while its task may
// still run.
func WithTaskDeadline(d time.Duration) Option {
	return func(s *settings) error { s.taskDeadline = d; return nil }
}

// WithConcurrency sets how many enqueues EnqueueMany keeps in flight; the
// default is DefaultConcurrency.
func WithConcurrency(n int) Option {
	return func(s *settings) error { s.conc = n; return nil }
}

// New returns a Client for the Redis at redisURL: redis://, rediss://,
// redis-socket:// or redis-sentinel://host:port,...?master=NAME, with an
// ACL user if any (redis://user:password@host:6379/0). Sentinels with
// credentials of their own, or a private CA, need NewFromRedis with
// asynq.RedisFailoverClientOpt or a TLSConfig. It does not connect: the
// first call does (use Ping to check early). Errors never contain the
// URL's password.
func New(redisURL string, opts ...Option) (*Client, error) {
	opt, err := redisconn.Settings{URL: redisURL}.Options()
	if err != nil {
		return nil, fmt.Errorf("redis URL %s is not valid: %w", redisconn.RedactURL(redisURL), err)
	}
	c, err := NewFromRedis(opt, opts...)
	if err != nil {
		return nil, err
	}
	c.where = "Redis at " + redisconn.RedactURL(redisURL)
	return c, nil
}

// NewFromRedis returns a Client for an asynq connection option. The Client
// owns the connection pool it makes and closes it on Close.
func NewFromRedis(opt asynq.RedisConnOpt, opts ...Option) (*Client, error) {
	s, err := apply(opts)
	if err != nil {
		return nil, err
	}
	// go-redis' default pool (10 per CPU) would make bulk enqueues queue
	// for connections on a small machine.
	pool := max(s.conc+8, 10*runtime.GOMAXPROCS(0))
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		if o.PoolSize == 0 {
			o.PoolSize = pool
		}
		opt = o
	case *asynq.RedisClientOpt:
		if o.PoolSize == 0 {
			cp := *o
			cp.PoolSize = pool
			opt = cp
		}
	case asynq.RedisFailoverClientOpt:
		if o.PoolSize == 0 {
			o.PoolSize = pool
		}
		opt = o
	}
	rdb, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("unsupported Redis connection option %T", opt)
	}
	c := newClient(rdb, s)
	c.ownsRedis = true
	return c, nil
}

// NewFromRedisClient returns a Client that shares rdb, for a process that
// already has a go-redis client. Close does not close rdb.
func NewFromRedisClient(rdb redis.UniversalClient, opts ...Option) (*Client, error) {
	s, err := apply(opts)
	if err != nil {
		return nil, err
	}
	return newClient(rdb, s), nil
}

func apply(opts []Option) (settings, error) {
	s := settings{stream: results.DefaultStream, conc: DefaultConcurrency, actor: cancel.ActorClient, taskDeadline: tasks.DefaultTaskDeadline}
	for _, o := range opts {
		if err := o(&s); err != nil {
			return s, err
		}
	}
	if s.stream == "" {
		return s, errors.New("results stream name is empty; leave it unset for " + results.DefaultStream)
	}
	if s.conc < 1 {
		return s, fmt.Errorf("concurrency is %d; want at least 1", s.conc)
	}
	if s.taskDeadline <= 0 {
		return s, fmt.Errorf("task deadline is %s; want a positive duration, the workers' TASK_DEADLINE", s.taskDeadline)
	}
	if s.queues == nil {
		s.queues = tasks.DefaultQueues()
	}
	return s, nil
}

func newClient(rdb redis.UniversalClient, s settings) *Client {
	wait := DefaultCancelWait
	if s.cancelWait != nil {
		wait = *s.cancelWait
	}
	return &Client{
		actor:      s.actor,
		cancelWait: wait,
		rdb:        rdb,
		aq:         asynq.NewClientFromRedisClient(rdb),
		reader:     results.NewReader(rdb, s.stream),
		stream:     s.stream,
		queues:     s.queues,
		conc:       s.conc,
		where:      "Redis",

		taskDeadline: s.taskDeadline,
	}
}

// Close stops the reading that Wait shares and releases the connection
// pool (unless it was given to NewFromRedisClient).
func (c *Client) Close() error {
	c.reader.Close()
	if !c.ownsRedis {
		return nil
	}
	return c.rdb.Close()
}

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cannot reach %s: %w", c.where, err)
	}
	return nil
}
