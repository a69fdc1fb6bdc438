// Package redisconn turns REDIS_URL and the settings that go with it
// (Sentinel credentials, a CA for rediss://) into asynq's connection
// options: the one place every refreshq process (worker, web UI, HTTP
// API, cmd/enqueue, the client package) learns how to reach Redis.
//
// It exists because asynq's ParseRedisURI drops the ACL user name of
// redis://user:password@host, gives a redis-sentinel:// URL's password to
// the sentinels and none to the master, and has no way to trust a private
// CA. It does not connect.
//
// It is also the one place that masks the Redis password: in a URL shown
// to a user (RedactURL) and in an error or log text that may quote it
// (Redact, RedactError). The upstreams' API keys are another secret,
// masked by internal/clients.
package redisconn
