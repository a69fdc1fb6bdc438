package handlers

import (
	"context"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/tasks"
)

// response is an upstream's 2xx answer, as much of it as the handler needs.
type response struct {
	Status int
	Body   []byte // verbatim, becomes the result's result field
	// RateLimit is the quota the upstream reported, when it did.
	RateLimit clients.RateLimit
}

// upstream is one provider as the handler sees it.
type upstream struct {
	Provider string
	// KeyVar names the variable that holds the API key, for the auth
	// result of a provider that is not configured.
	KeyVar string
	// Call sends one refresh request; nil means the provider has no API
	// key and is not served.
	Call     func(ctx context.Context, r tasks.Refresh) (response, error)
	Key      ratelimit.Key
	Budget   ratelimit.Budget
	DailyCap int
}

// bundleSocialCall adapts the bundle.social client.
func bundleSocialCall(c *clients.BundleSocial) func(context.Context, tasks.Refresh) (response, error) {
	return func(ctx context.Context, r tasks.Refresh) (response, error) {
		res, err := c.RefreshProfile(ctx, r.TeamID, r.Platform)
		if err != nil {
			return response{}, err
		}
		return response{Status: res.StatusCode, Body: res.Body, RateLimit: res.RateLimit}, nil
	}
}

// hookedCall adapts the hooked.so client.
func hookedCall(c *clients.Hooked) func(context.Context, tasks.Refresh) (response, error) {
	return func(ctx context.Context, r tasks.Refresh) (response, error) {
		res, err := c.RefreshAccount(ctx, r.AccountID)
		if err != nil {
			return response{}, err
		}
		return response{Status: res.StatusCode, Body: res.Body}, nil
	}
}
