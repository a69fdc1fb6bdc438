package simulator_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/refreshq/refreshq/internal/simulator"
)

func TestDemoScriptFollowsTheDocumentedRules(t *testing.T) {
	cases := []struct {
		subject string
		want    []int // statuses of calls 1, 2, 3, ...; 0 = no rule (random outcomes)
	}{
		{"acc-1", []int{0, 0, 0}},
		{"team-1/TIKTOK", []int{0, 0}},
		{"gone-acc", []int{404, 404, 404}},
		{"missing-7", []int{404, 404}},
		{"Gone/TIKTOK", []int{404}},
		{"flaky-acc", []int{500, 500, 200, 200}},
		{"flaky-team/YOUTUBE", []int{500, 500, 200}},
		{"busy-acc", []int{429, 200, 200}},
		{"broken-acc", []int{500, 500, 500, 500, 500}},
		{"slow-acc", []int{200, 200}},
		{"garbled-acc", []int{200}},
		{"revoked-acc", []int{403, 403}},
		{"nocredit-acc", []int{402}},
	}
	for _, tc := range cases {
		t.Run(tc.subject, func(t *testing.T) {
			var got []int
			for n := range len(tc.want) {
				r := simulator.DemoScript(simulator.Call{Subject: tc.subject, N: n + 1})
				status := 0
				if r != nil {
					status = r.Status
					if status == 0 {
						status = 200
					}
				}
				got = append(got, status)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("statuses %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("busy says when to come back", func(t *testing.T) {
		if r := simulator.DemoScript(simulator.Call{Subject: "busy-acc", N: 1}); r.Header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
		}
	})
	t.Run("hang hangs", func(t *testing.T) {
		if r := simulator.DemoScript(simulator.Call{Subject: "hang-acc", N: 1}); r == nil || !r.Hang {
			t.Errorf("reply %+v", r)
		}
	})
	t.Run("slow is slow", func(t *testing.T) {
		if r := simulator.DemoScript(simulator.Call{Subject: "slow-acc", N: 1}); r == nil || r.Delay <= 0 {
			t.Errorf("reply %+v", r)
		}
	})
}

// Demo's options served for real: rules and provider-shaped bodies.
func TestDemoOptionsEndToEnd(t *testing.T) {
	e := setup(t, simulator.Demo())
	if r := e.hooked(t, key, "garbled-acc"); r.status != 200 || json.Valid(r.body) {
		t.Errorf("garbled: %d %q, want a 200 that is not JSON", r.status, r.body)
	}
	r := e.hooked(t, key, "gone-acc")
	if m := r.json(t); r.status != http.StatusNotFound || m["success"] != false || m["message"] != "Account not found" {
		t.Errorf("gone: %d %s", r.status, r.body)
	}
	r = e.bundle(t, key, "flaky-team", "TIKTOK")
	if m := r.json(t); r.status != 500 || m["statusCode"] != float64(500) {
		t.Errorf("flaky: %d %s", r.status, r.body)
	}
}
