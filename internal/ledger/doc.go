// Package ledger keeps what the worker knows about each task across its
// runs, in Redis, so that any worker in the fleet that picks the task up
// next knows it too: when it was first seen, how many upstream requests it
// has sent (the results' attempts), how many of those were 429s (which do
// not spend MAX_RETRIES), the last outcome, and which run it is in (an
// operator's re-run of an archived task starts the next).
//
// It is not the result (see results) and not the retry policy (see retry).
package ledger
