// Package ratelimit holds the rules of fleet-wide admission control for
// upstream requests, kept in Redis so that every worker process shares
// one view, and what a worker reports after each request.
//
// It does not admit requests itself: internal/quota's admission script,
// the one call before every request, starts with [Lua] and runs these
// checks on the keys and arguments of [Limiter.Checks], after the task's
// own. Timed by Redis TIME so that all workers agree on the clock, they
// pass a request only if every one passes, in this order:
//
//  1. the key's cooldown (set after a 429, or when the upstream says its
//     quota is nearly spent);
//  2. the provider's circuit breaker, one per Key.Endpoint when set
//     (opened by a streak of failures; when its open period ends a
//     single request is let through as the probe);
//  3. the key's daily cap, per UTC day;
//  4. every window of the key's [Budget], each a sliding-window log (a
//     bucket counter above [ExactMax]), so that all processes together
//     never admit more than N requests in any interval of length Per
//     (+ Options.Margin).
//
// The first three name what refused a request as internal/quota's
// Guards do. Waiting is not failing: callers reschedule without spending
// a retry.
//
// After the request the caller reports what happened, queued in the same
// round trip as the task's own write:
//
//	switch {
//	case 429:
//		lim.CooldownPipelined(ctx, pipe, key, retryAfter) // 0 when the response gave no hint; bounded by the caller
//		lim.ReportPipelined(ctx, pipe, key, true, probe)
//	case 5xx, timeout, network error:
//		lim.ReportPipelined(ctx, pipe, key, false, probe)
//	default: // 2xx and other 4xx
//		lim.ObservePipelined(ctx, pipe, key, Quota{limit, used, remaining, windowSeconds}, maxPause) // bundle.social 200s
//		lim.ReportPipelined(ctx, pipe, key, true, probe)
//	}
//
// Queue the cooldown before the report on a 429: a success report ends
// the key's exponential back-off, and it only does so once the back-off's
// cooldown is over, which a 429 reported after its own cooldown never is.
//
// For people and metrics, [Limiter.Announce] and [Limiter.Status] show the
// keys a fleet serves, and [Limiter.BreakerState] and [Limiter.DailyUsed]
// read one key's state.
//
// The package does not send requests, sleep, or retry; it does not limit
// concurrency within a process. It never sees an API key: a [Key] carries
// [KeyID], a short hash of it.
//
// All state lives under Options.Prefix with the provider in a hash tag, so
// a provider's keys share one Redis Cluster slot. Deadlines are stored as
// values and compared with the script's clock; key TTLs only clean up, so
// the package also behaves on miniredis, whose keys expire only when its
// clock is advanced (see docs/ratelimit.md).
package ratelimit
