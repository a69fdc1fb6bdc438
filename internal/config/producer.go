package config

import (
	"errors"

	"github.com/refreshq/refreshq/internal/redisconn"
)

// Producer is the enqueue command's configuration: the subset of Settings
// a producer shares with the workers.
type Producer struct {
	RedisURL string
	// RedisSentinelUsername, RedisSentinelPassword and RedisCACert go
	// with RedisURL; RedisSettings puts them together.
	RedisSentinelUsername, RedisSentinelPassword, RedisCACert string
	Queues                                                    Queues
	ResultsStream                                             string
}

// RedisSettings is how to reach Redis.
func (p Producer) RedisSettings() redisconn.Settings {
	return redisconn.Settings{URL: p.RedisURL, SentinelUsername: p.RedisSentinelUsername,
		SentinelPassword: p.RedisSentinelPassword, CACert: p.RedisCACert}
}

// LoadProducer reads the settings marked Producer through getenv:
// REDIS_URL with the settings that go with it, QUEUES and RESULTS_STREAM.
// Its error is a *UsageError.
func LoadProducer(getenv func(string) string) (Producer, error) {
	r := &reader{getenv: getenv}
	var p Producer
	p.RedisURL = r.str("REDIS_URL")
	p.RedisSentinelUsername, p.RedisSentinelPassword, p.RedisCACert = readRedisExtras(r)
	switch {
	case p.RedisURL == "" && len(r.errs) == 0:
		r.fail("REDIS_URL is not set; set it to the Redis the workers use, e.g. REDIS_URL=redis://127.0.0.1:6379")
	case p.RedisURL != "":
		if _, err := p.RedisSettings().Options(); err != nil {
			r.errs = append(r.errs, err)
		}
	}
	q, err := ParseQueues(r.str("QUEUES"))
	if err != nil {
		r.errs = append(r.errs, err)
	}
	p.Queues = q
	p.ResultsStream = r.str("RESULTS_STREAM")
	if len(r.errs) > 0 {
		return p, &UsageError{errors.Join(r.errs...)}
	}
	return p, nil
}
