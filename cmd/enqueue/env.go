package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/internal/redisconn"
)

// env is the producer's configuration, read once from the environment.
type env struct {
	redis  redisconn.Settings
	queues config.Queues
	stream string
}

func loadEnv(getenv func(string) string) (env, error) {
	p, err := config.LoadProducer(getenv)
	if err != nil {
		return env{}, &usageError{err}
	}
	return env{redis: p.RedisSettings(), queues: p.Queues, stream: p.ResultsStream}, nil
}

// newClient reads the environment and makes a client. A REDIS_URL that
// does not parse is bad input (exit 2).
func newClient(getenv func(string) string, opts ...client.Option) (*client.Client, error) {
	e, err := loadEnv(getenv)
	if err != nil {
		return nil, err
	}
	opts = append([]client.Option{client.WithQueues(e.queues.Names()...), client.WithResultsStream(e.stream)}, opts...)
	// LoadProducer has checked the settings; this builds the same options.
	ropt, err := e.redis.Options()
	if err != nil {
		return nil, &usageError{err}
	}
	c, err := client.NewFromRedis(ropt, opts...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return c, nil
}

// redisHint turns a Redis failure into a message that says what to check.
func redisHint(err error) error {
	return fmt.Errorf("%w; check that Redis is running and REDIS_URL points at it", err)
}

// parseFlags parses args with fs, allowing flags after positional
// arguments (enqueue file x.jsonl --unique 1h), and returns the positional
// ones. -h prints usage on stdout and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stdout io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, usage)
				return nil, flag.ErrHelp
			}
			return nil, usagef("%v; run \"enqueue %s -h\" for usage", err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
