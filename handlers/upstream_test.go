package handlers

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/tasks"
)

// New serves each provider from its entry in the table of internal/clients
// alone: given an API key and a base URL, every provider of tasks gets a
// client that sends its requests there, and the table's documented limit
// as its budget when Rate is empty.
func TestNewServesEveryProviderFromTheTable(t *testing.T) {
	rdb, _ := redistest.Client(t)
	var mu sync.Mutex
	seen := map[string]string{} // first path segment → the x-api-key it came with
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		provider, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		mu.Lock()
		seen[provider] = r.Header.Get("x-api-key")
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)

	providers := map[string]Provider{}
	for _, id := range tasks.Providers() {
		providers[id] = Provider{APIKey: "key-" + id, BaseURL: srv.URL + "/" + id}
	}
	h, err := New(Config{Redis: rdb, Providers: providers, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })

	if len(h.upstreams) != len(tasks.Providers()) {
		t.Errorf("New made %d upstreams, want one for each of %q", len(h.upstreams), tasks.Providers())
	}
	for _, api := range clients.Upstreams() {
		id := api.Provider
		u, ok := h.upstreams[id]
		if !ok || u.Call == nil {
			t.Errorf("%s: not served though its key is set", id)
			continue
		}
		want, err := ratelimit.ParseBudget(api.Rate)
		if err != nil {
			t.Fatal(err)
		}
		if u.Budget.String() != want.String() {
			t.Errorf("%s: budget %s, want the table's %s", id, u.Budget, want)
		}
		// Every subject field is filled in: each client reads its own.
		r := tasks.Refresh{Provider: id, TeamID: "team-1", Platform: "TIKTOK", AccountID: "acct-1"}
		if _, err := u.Call(t.Context(), r); err == nil {
			t.Errorf("%s: a 503 came back as a success", id)
		}
		mu.Lock()
		key, reached := seen[id]
		mu.Unlock()
		if !reached || key != "key-"+id {
			t.Errorf("%s: request reached its base URL %v with key %q; want key-%s", id, reached, key, id)
		}
	}
}

// A provider id New does not know is a mistake in the caller's Config, not
// a provider left unserved in silence.
func TestNewRejectsAnUnknownProvider(t *testing.T) {
	rdb, _ := redistest.Client(t)
	_, err := New(Config{Redis: rdb, Providers: map[string]Provider{"bundle-social": {APIKey: "k"}}})
	if err == nil || !strings.Contains(err.Error(), `"bundle-social"`) || !strings.Contains(err.Error(), tasks.ProviderBundleSocial) {
		t.Errorf("err = %v; want one naming the unknown id and the known ones", err)
	}
}

// A Config New rejects leaves the registry as it was: the caller who fixes
// it and calls New again with the same registry gets a handler, not
// "already registered".
func TestNewRejectsBeforeRegisteringMetrics(t *testing.T) {
	rdb, _ := redistest.Client(t)
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Redis: rdb, Metrics: reg, LaneReserve: 1.5}); err == nil {
		t.Fatal("New accepted a LaneReserve of 1.5")
	}
	h, err := New(Config{Redis: rdb, Metrics: reg, LaneReserve: 0.1})
	if err != nil {
		t.Fatalf("New with the corrected Config and the same registry: %v", err)
	}
	t.Cleanup(func() { h.Close() })
}
