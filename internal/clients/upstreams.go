package clients

import (
	"context"

	"github.com/refreshq/refreshq/tasks"
)

// Refresher sends one refresh request to a provider's API.
type Refresher interface {
	// Refresh asks the API to refresh r's subject. A 2xx that is the
	// documented success comes back as a Response; anything else as one of
	// the package's error types.
	Refresh(ctx context.Context, r tasks.Refresh) (Response, error)
}

// Response is a provider's successful answer to a refresh, as much of it as
// the worker keeps whatever the provider.
type Response struct {
	StatusCode int
	// Body is the response body verbatim, unknown fields included.
	Body []byte
	// RateLimit is the quota the response reports; its Known is false when
	// the provider reports none.
	RateLimit RateLimit
}

// Upstream is one provider's API as the worker needs to know it: how to
// reach it, how fast it may be called, and how to make its client.
type Upstream struct {
	// Provider is the provider id of tasks (tasks.Providers()).
	Provider string
	// Name is what people call the API, for messages and docs.
	Name string
	// BaseURL is the real API's root.
	BaseURL string
	// Rate is the fleet-wide budget per API key when none is configured:
	// the API's documented limit, N/DURATION[,N/DURATION...], or "off"
	// when it documents none.
	Rate string
	// New returns a client that authenticates with apiKey.
	New func(apiKey string, opts ...Option) (Refresher, error)
}

// Default base URLs of the real APIs.
const (
	DefaultBundleSocialBaseURL = "https://api.bundle.social"
	DefaultHookedBaseURL       = "https://api.hooked.so"
)

// upstreams is the one table of provider APIs, in tasks.Providers() order.
// A provider is served when it has an entry here; its settings, budgets and
// status page rows all come from it.
var upstreams = []Upstream{
	{
		Provider: tasks.ProviderBundleSocial, Name: "bundle.social",
		BaseURL: DefaultBundleSocialBaseURL,
		Rate:    "5/1s,20/10s,100/1m", // bundle.social's documented per-user limits
		New: func(apiKey string, opts ...Option) (Refresher, error) {
			return refresher(NewBundleSocial(apiKey, opts...))
		},
	},
	{
		Provider: tasks.ProviderHooked, Name: "hooked.so",
		BaseURL: DefaultHookedBaseURL,
		Rate:    "off",
		New: func(apiKey string, opts ...Option) (Refresher, error) {
			return refresher(NewHooked(apiKey, opts...))
		},
	},
}

// refresher keeps a failed constructor's nil pointer out of the interface,
// where it would not compare equal to nil.
func refresher[C Refresher](c C, err error) (Refresher, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Upstreams lists the provider APIs, in tasks.Providers() order.
func Upstreams() []Upstream {
	out := make([]Upstream, len(upstreams))
	copy(out, upstreams)
	return out
}
