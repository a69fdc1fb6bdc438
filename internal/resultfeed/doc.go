// Package resultfeed lets many callers wait for results at the cost of one:
// a single follower per Feed reads the results stream with XREAD BLOCK and
// hands each entry to the callers waiting for its task id. It runs only
// while someone waits, so an idle process sends Redis nothing.
//
// It is for waiting on results by task id (client.Wait, the HTTP API's
// long-poll). It does not publish results (see results) or consume them as
// a group (see client.Consume).
package resultfeed
