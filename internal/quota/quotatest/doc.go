// Package quotatest admits upstream requests in tests the way the worker
// does: through the quota engine's one call, [quota.Engine.AdmitPipelined],
// so that a test of a limiter rule, a status page or a pause runs the
// admission script production runs. [Cooldown] and [Observe] pause a key
// through the calls the worker makes after a 429 and after a response
// that reports its quota.
//
// It is for tests only; nothing outside _test.go files imports it.
package quotatest
