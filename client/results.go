package client

import (
	"context"

	"github.com/refreshq/refreshq/results"
)

// The producer's reads of the results stream. Each is the results.Reader
// method of the same name on the Client's stream and connection pool, here
// so that enqueueing a refresh and reading its result take one value.

// Result returns a task's latest result, or results.ErrNoResult while it
// has none (queued, running, retrying, or its index record expired).
func (c *Client) Result(ctx context.Context, taskID string) (results.Entry, error) {
	return c.reader.Lookup(ctx, taskID)
}

// Wait blocks until taskID has a result and returns it (results.Reader.Wait):
// concurrent Waits on one Client share a single blocking read of the
// stream. It returns ctx's error when ctx ends first: give ctx a timeout.
func (c *Client) Wait(ctx context.Context, taskID string) (results.Entry, error) {
	return c.reader.Wait(ctx, taskID)
}

// Follow calls fn with each result added after from ("$", "0" or an entry
// id) until fn returns an error or ctx ends (results.Reader.Follow).
func (c *Client) Follow(ctx context.Context, from string, fn func(context.Context, results.Entry) error) error {
	return c.reader.Follow(ctx, from, fn)
}

// Consume reads results as a consumer of a consumer group, acknowledging
// each entry fn returns nil for (results.Reader.Consume).
func (c *Client) Consume(ctx context.Context, group, consumer string, fn func(context.Context, results.Entry) error, opts results.ConsumeOptions) error {
	return c.reader.Consume(ctx, group, consumer, fn, opts)
}
