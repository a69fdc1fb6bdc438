// Package simulator stands in for both upstream APIs: bundle.social's
// POST /api/v1/social-account/profile-refresh and hooked.so's
// POST /v1/social/account/{accountId}/refresh, answered as the seeds
// document them. `worker -demo` runs against it, and tests across the
// repository use it to script upstream behaviour and count calls.
//
// It is not a model of either API beyond those two routes, and never
// talks to the real services.
//
// # Behaviour, in the order it is decided
//
//  1. Routing: both routes are served under Options.Prefix. Anything else
//     is a 404. The request is recorded as a Call either way.
//  2. x-api-key: missing is 401, not accepted (see Options.APIKey) is 403.
//  3. bundle.social's body is validated: "type" must be a platform known to
//     package tasks and "teamId" a non-empty string, else 400 with zod-style
//     issues.
//  4. Options.RateLimit, when set, is enforced per provider and API key as
//     sliding windows; over it is 429 with Retry-After.
//  5. Options.Script, when it returns a Reply, decides the answer.
//  6. Random outcomes by P429, P500 and P404. A random 429 carries
//     Retry-After of 1-3 s, as seconds or, one time in three, an HTTP-date.
//  7. Otherwise 200 with a body shaped like the seed's.
//
// # Demo rules
//
// Demo's Options use DemoScript, whose outcome depends only on the subject
// (the account id, or TEAM/PLATFORM for bundle.social; matched case
// insensitively) and on how many times it was called, so the demo's output
// can be explained line by line:
//
//	contains "gone", or starts with "missing"  404 every time (not_found)
//	contains "flaky"                            500, 500, then 200
//	contains "busy"                             429 with Retry-After: 2, then 200
//	contains "broken"                           500 every time (server, after the retries)
//	contains "slow"                             200 after an extra 2 s
//	contains "hang"                             never answers (timeout)
//	contains "garbled"                          200 whose body is not JSON (invalid_response)
//	contains "revoked"                          403 (auth)
//	contains "nocredit"                         402, credits exhausted (payment_required)
//
// Rules are checked in that order. Every other subject gets a 200, except
// for Demo's random 429s (5%) and 500s (5%).
package simulator
