// Package redistest gives tests a Redis: the real one named by REDIS_URL
// (CI sets it) or, when unset, an embedded miniredis; and, for tests that
// kill or restart Redis, a redis-server of their own on a free port.
//
// It is for tests only.
package redistest
