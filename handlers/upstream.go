package handlers

import (
	"context"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/tasks"
)

// Reply is an upstream's 2xx answer, as much of it as the handler needs.
type Reply struct {
	Status int
	Body   []byte // verbatim, becomes the result's result field
	// RateLimit is the quota the upstream reported, when it did.
	RateLimit clients.RateLimit
}

// Upstream is one provider as the handler sees it.
type Upstream struct {
	Provider string
	// KeyVar names the variable that holds the API key, for the auth
	// result of a provider that is not configured.
	KeyVar string
	// Call sends one refresh request; nil means the provider has no API
	// key and is not served.
	Call     func(ctx context.Context, r tasks.Refresh) (Reply, error)
	Key      ratelimit.Key
	Budget   ratelimit.Budget
	DailyCap int
}

// BundleSocialCall adapts the bundle.social client.
func BundleSocialCall(c *clients.BundleSocial) func(context.Context, tasks.Refresh) (Reply, error) {
	return func(ctx context.Context, r tasks.Refresh) (Reply, error) {
		res, err := c.RefreshProfile(ctx, r.TeamID, r.Platform)
		if err != nil {
			return Reply{}, err
		}
		return Reply{Status: res.StatusCode, Body: res.Body, RateLimit: res.RateLimit}, nil
	}
}

// HookedCall adapts the hooked.so client.
func HookedCall(c *clients.Hooked) func(context.Context, tasks.Refresh) (Reply, error) {
	return func(ctx context.Context, r tasks.Refresh) (Reply, error) {
		res, err := c.RefreshAccount(ctx, r.AccountID)
		if err != nil {
			return Reply{}, err
		}
		return Reply{Status: res.StatusCode, Body: res.Body}, nil
	}
}
