package clients_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/tasks"
)

// The table of upstreams is the one place that knows each provider's API:
// it holds exactly the providers tasks knows, in tasks' order, and each
// entry alone (its defaults and its constructor) is enough to refresh a
// subject of its provider.
func TestUpstreamsServeEveryProvider(t *testing.T) {
	var ids []string
	for _, u := range clients.Upstreams() {
		ids = append(ids, u.Provider)
	}
	if !slices.Equal(ids, tasks.Providers()) {
		t.Fatalf("upstream table has providers %q; tasks has %q: each provider of tasks needs exactly one entry, in the same order", ids, tasks.Providers())
	}

	sim := simulator.New(simulator.Options{Prefix: "/sim", APIKey: testKey})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); srv.Close() })

	for _, u := range clients.Upstreams() {
		t.Run(u.Provider, func(t *testing.T) {
			if u.Name == "" {
				t.Error("Name is empty: settings and messages name the API by it")
			}
			if b, err := url.Parse(u.BaseURL); err != nil || b.Scheme != "https" || b.Host == "" {
				t.Errorf("BaseURL %q is not the https root of an API", u.BaseURL)
			}
			if _, err := ratelimit.ParseBudget(u.Rate); err != nil {
				t.Errorf("Rate %q: %v", u.Rate, err)
			}
			if c, err := u.New(""); err == nil || c != nil {
				t.Errorf("New with no key = %v, %v; want no client and an error", c, err)
			}

			c, err := u.New(testKey, clients.WithBaseURL(srv.URL+"/sim"), clients.WithHTTPClient(srv.Client()), clients.WithTimeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			r := sampleRefresh(t, u.Provider)
			res, err := c.Refresh(t.Context(), r)
			if err != nil {
				t.Fatalf("Refresh(%s): %v", r.Subject(), err)
			}
			if res.StatusCode != 200 || !json.Valid(res.Body) {
				t.Errorf("Refresh(%s) = status %d, body %q; want 200 and the JSON body", r.Subject(), res.StatusCode, res.Body)
			}
			if calls := sim.CallsFor(r.Subject()); len(calls) != 1 {
				t.Errorf("the upstream saw %d requests for %s, want 1", len(calls), r.Subject())
			}
		})
	}
}

// sampleRefresh is a valid refresh of provider, its subject fields filled
// in from the values below, decoded as a producer's input would be.
func sampleRefresh(t *testing.T, provider string) tasks.Refresh {
	t.Helper()
	samples := map[string]string{"team_id": "team-1", "platform": "TIKTOK", "account_id": "acct-1"}
	in := map[string]string{"provider": provider}
	for _, key := range tasks.SubjectFields(provider) {
		v, ok := samples[key]
		if !ok {
			t.Fatalf("no sample value for %s's subject field %s: add one here", provider, key)
		}
		in[key] = v
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tasks.Decode(data, nil)
	if err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("sample %s: %v", data, err)
	}
	return r
}
