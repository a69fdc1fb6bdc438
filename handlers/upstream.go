package handlers

import (
	"context"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/tasks"
)

// upstream is one provider as the handler sees it.
type upstream struct {
	Provider string
	// KeyVar names the variable that holds the API key, for the auth
	// result of a provider that is not configured.
	KeyVar string
	// Call sends one refresh request (the provider client's Refresh); nil
	// means the provider has no API key and is not served.
	Call     func(ctx context.Context, r tasks.Refresh) (clients.Response, error)
	Key      ratelimit.Key
	Budget   ratelimit.Budget
	DailyCap int
}
