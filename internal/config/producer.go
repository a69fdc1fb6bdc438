package config

import "errors"

// Producer is the enqueue command's configuration: the subset of Settings
// a producer shares with the workers.
type Producer struct {
	RedisURL      string
	Queues        Queues
	ResultsStream string
}

// LoadProducer reads REDIS_URL (or REDIS_URL_FILE), QUEUES and
// RESULTS_STREAM through getenv. Its error is a *UsageError.
func LoadProducer(getenv func(string) string) (Producer, error) {
	r := &reader{getenv: getenv}
	var p Producer
	p.RedisURL = r.str("REDIS_URL")
	if p.RedisURL == "" && len(r.errs) == 0 {
		r.fail("REDIS_URL is not set; set it to the Redis the workers use, e.g. REDIS_URL=redis://127.0.0.1:6379")
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
