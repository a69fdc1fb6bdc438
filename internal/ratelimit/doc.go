// Package ratelimit is fleet-wide admission control for upstream requests,
// kept in Redis so that every worker process shares one view.
//
// Before each upstream request a caller asks [Limiter.Acquire] (the
// worker asks internal/quota, whose admission script runs these checks,
// [Lua], after the task's own); one Lua script, run in a single round trip
// and timed by Redis TIME so that all workers agree on the clock, checks
// in this order and records the request only if every check passes:
//
//  1. the key's cooldown (set by [Limiter.Cooldown] after a 429, or with
//     by [Limiter.Observe] when the upstream says its quota is nearly
//     spent);
//  2. the provider's circuit breaker, one per Key.Endpoint when set
//     (opened by [Limiter.Report] after a
//     streak of failures; when its open period ends a single request is let
//     through as the probe, Decision.Probe);
//  3. the key's daily cap, per UTC day;
//  4. every window of the key's [Budget], each a sliding-window log (a
//     bucket counter above [ExactMax]), so that all processes together
//     never admit more than N requests in any interval of length Per
//     (+ Options.Margin).
//
// A refusal says why (Decision.Reason) and how long until the first check
// that refused could pass (Decision.Wait, exact for budgets). Waiting is
// not failing: callers reschedule without spending a retry.
//
// After the request the caller reports what happened:
//
//	d, err := lim.Acquire(ctx, key, budget, dailyCap)
//	if err != nil { ... }              // Redis trouble: retry later
//	if !d.Allowed { ... }              // reschedule after d.Wait
//	resp, err := send()
//	switch {
//	case 429:
//		lim.Cooldown(ctx, key, retryAfter) // 0 when the response gave no hint; bounded by the caller
//		lim.Report(ctx, key, true, d.Probe)
//	case 5xx, timeout, network error:
//		lim.Report(ctx, key, false, d.Probe)
//	default:                              // 2xx and other 4xx
//		lim.Observe(ctx, key, Quota{limit, used, remaining, windowSeconds}, maxPause) // bundle.social 200s
//		lim.Report(ctx, key, true, d.Probe)
//	}
//
// Call Cooldown before Report on a 429: Report(ok) ends the key's
// exponential back-off, and it only does so once the back-off's cooldown
// is over, which a 429 reported after its own Cooldown never is.
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
