package clients_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/simulator"
)

// The clients and the simulator are written from the same seeds; this
// proves they read them the same way, so tests elsewhere that use the
// simulator exercise the real request and response shapes.
func TestClientsAgreeWithSimulator(t *testing.T) {
	sim := simulator.New(simulator.Options{
		Prefix: "/sim",
		APIKey: testKey,
		Script: func(c simulator.Call) *simulator.Reply {
			switch c.Subject {
			case "busy", "busy/TIKTOK":
				return &simulator.Reply{Status: 429, Header: http.Header{"Retry-After": {"3"}}}
			case "hang":
				return &simulator.Reply{Hang: true}
			}
			return simulator.DemoScript(c)
		},
	})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	newClients := func(t *testing.T, key string) (*clients.BundleSocial, *clients.Hooked) {
		t.Helper()
		opts := []clients.Option{clients.WithBaseURL(srv.URL + "/sim"), clients.WithHTTPClient(srv.Client()), clients.WithTimeout(500 * time.Millisecond)}
		b, err := clients.NewBundleSocial(key, opts...)
		if err != nil {
			t.Fatal(err)
		}
		h, err := clients.NewHooked(key, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return b, h
	}
	b, h := newClients(t, testKey)

	t.Run("bundle success", func(t *testing.T) {
		got, err := b.RefreshProfile(t.Context(), "team 1", "LINKEDIN")
		if err != nil {
			t.Fatal(err)
		}
		a := got.SocialAccount
		if !got.Success || got.SocialAccountID == "" || a.ID != got.SocialAccountID || a.Type != "LINKEDIN" || a.TeamID != "team 1" ||
			a.Username == nil || a.CreatedAt == nil || a.UpdatedAt == nil || got.RefreshedAt == "" || !got.RateLimit.Known {
			t.Errorf("decoded %+v", got)
		}
		if c := sim.CallsFor("team 1/LINKEDIN"); len(c) != 1 || c[0].Status != 200 {
			t.Errorf("simulator saw %+v", c)
		}
	})
	t.Run("hooked success with an id that needs escaping", func(t *testing.T) {
		got, err := h.RefreshAccount(t.Context(), "a/b?c")
		if err != nil {
			t.Fatal(err)
		}
		var acct struct{ ID, Username, Platform string }
		if err := json.Unmarshal(got.Data.Account, &acct); err != nil || !got.Success || acct.ID != "a/b?c" || acct.Username == "" || acct.Platform == "" {
			t.Errorf("decoded %+v (%v) from %s", acct, err, got.Data.Account)
		}
	})

	errCases := []struct {
		name   string
		call   func(ctx context.Context) error
		status int
	}{
		{"bundle unknown platform is a 400 with issues", func(ctx context.Context) error {
			_, err := b.RefreshProfile(ctx, "t1", "MYSPACE")
			return err
		}, 400},
		{"hooked not found", func(ctx context.Context) error { _, err := h.RefreshAccount(ctx, "gone-1"); return err }, 404},
		{"bundle 429", func(ctx context.Context) error { _, err := b.RefreshProfile(ctx, "busy", "TIKTOK"); return err }, 429},
		{"hooked 402", func(ctx context.Context) error { _, err := h.RefreshAccount(ctx, "nocredit"); return err }, 402},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(t.Context())
			e := mustAPIError(t, err)
			if e.StatusCode != tc.status || e.Message == "" {
				t.Errorf("got %d %q", e.StatusCode, e.Message)
			}
			if tc.status == 400 && (len(e.Issues) != 1 || e.Issues[0].Code == nil || *e.Issues[0].Code != "invalid_enum_value") {
				t.Errorf("issues = %+v", e.Issues)
			}
			if tc.status == 429 && (!e.RetryAfterKnown || e.RetryAfter != 3*time.Second) {
				t.Errorf("RetryAfter %v known=%v", e.RetryAfter, e.RetryAfterKnown)
			}
		})
	}
	t.Run("wrong key is 403", func(t *testing.T) {
		_, h2 := newClients(t, "another-key")
		_, err := h2.RefreshAccount(t.Context(), "a1")
		if e := mustAPIError(t, err); e.StatusCode != 403 {
			t.Errorf("status %d", e.StatusCode)
		}
	})
	t.Run("garbled 200 is an invalid response", func(t *testing.T) {
		_, err := h.RefreshAccount(t.Context(), "garbled")
		if _, ok := errors.AsType[*clients.InvalidResponseError](err); !ok {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("hang is a timeout", func(t *testing.T) {
		_, err := h.RefreshAccount(t.Context(), "hang")
		if e, ok := errors.AsType[*clients.TransportError](err); !ok || !e.Timeout {
			t.Errorf("err = %v", err)
		}
	})
}
