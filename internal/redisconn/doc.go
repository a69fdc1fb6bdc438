// Package redisconn turns REDIS_URL and the settings that go with it
// (Sentinel credentials, a CA for rediss://) into asynq's connection
// options: the one place every refreshq process (worker, web UI, HTTP
// API, cmd/enqueue, the client package) learns how to reach Redis.
//
// It exists because asynq's ParseRedisURI drops the ACL user name of
// redis://user:password@host, gives a redis-sentinel:// URL's password to
// the sentinels and none to the master, and has no way to trust a private
// CA. It does not connect.
package redisconn
