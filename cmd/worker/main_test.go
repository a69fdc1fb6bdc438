package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/syncbuf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The demo needs nothing configured: it prints where to look, enqueues its
// sample batch and prints each result as it lands, one per sample task,
// and stops cleanly when interrupted.
func TestDemoRunsWithNothingConfigured(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-demo"}, env(map[string]string{"HTTP_ADDR": "127.0.0.1:0"}), &stdout, &stderr)
	}()

	wants := []string{"REDIS_URL='redis://", "/monitoring/", "invalid_payload", "unknown_task_type", "not_found", "payment_required", "invalid_response", "ok   hooked        flaky-acc", "ok   hooked        busy-acc"}
	deadline := time.Now().Add(90 * time.Second)
	for {
		out := stdout.String()
		missing := ""
		for _, w := range wants {
			if !strings.Contains(out, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo output lacks %q after 90s:\n%s\nstderr:\n%s", missing, out, stderr.String())
		}
		select {
		case err := <-done:
			t.Fatalf("demo stopped early: %v\n%s\n%s", err, out, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo returned %v after an interrupt, want nil", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("demo did not stop within 40s of an interrupt")
	}
	if strings.Contains(stdout.String()+stderr.String(), "demo-key") {
		t.Error("the demo printed its API key")
	}
}

// -version needs no environment and prints the build.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-version"}, env(nil), &stdout, &stderr)
	if err != nil || !strings.HasPrefix(stdout.String(), "worker ") || !strings.Contains(stdout.String(), "(revision ") {
		t.Errorf("worker -version: %v, stdout %q", err, stdout.String())
	}
}

func TestBadConfigurationExitsTwo(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		mention string
	}{
		{"no REDIS_URL", nil, nil, "REDIS_URL is not set"},
		{"bad rate", map[string]string{"REDIS_URL": "redis://127.0.0.1:6379", "HOOKED_RATE": "lots"}, nil, "HOOKED_RATE"},
		{"unknown flag", map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"}, []string{"-frobnicate"}, "frobnicate"},
		{"stray argument", map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"}, []string{"now"}, "unexpected argument"},
		{"broken schedule", map[string]string{"REDIS_URL": "redis://127.0.0.1:6379", "HTTP_ADDR": "127.0.0.1:0", "SCHEDULE_FILE": brokenSchedule(t)}, nil, "SCHEDULE_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, env(tt.env), &stdout, &stderr)
			if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error()+stderr.String(), tt.mention) {
				t.Fatalf("run = %v (exit %d), stderr %q; want exit 2 mentioning %q", err, exitCode(err), stderr.String(), tt.mention)
			}
		})
	}
	if exitCode(errors.New("redis down")) != 1 {
		t.Error("a runtime error must exit 1")
	}
}

// brokenSchedule writes a schedule whose only entry has a bad cron spec.
func brokenSchedule(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "schedule.yaml")
	if err := os.WriteFile(path, []byte("- provider: hooked\n  account_id: a1\n  cron: \"61 * * * *\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// -healthcheck passes when HTTP_ADDR's /healthz answers 200 and fails
// (exit 1) otherwise, with no other configuration; an unspecified host
// (0.0.0.0, as in containers) is asked on loopback.
func TestHealthcheck(t *testing.T) {
	var unhealthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || unhealthy.Load() {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var stdout, stderr bytes.Buffer
	for _, addr := range []string{"127.0.0.1:" + port, "0.0.0.0:" + port} {
		if err := run(context.Background(), []string{"-healthcheck"}, env(map[string]string{"HTTP_ADDR": addr}), &stdout, &stderr); err != nil {
			t.Errorf("-healthcheck on %s = %v, want nil", addr, err)
		}
	}
	unhealthy.Store(true)
	err := run(context.Background(), []string{"-healthcheck"}, env(map[string]string{"HTTP_ADDR": "127.0.0.1:" + port}), &stdout, &stderr)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "503") {
		t.Fatalf("-healthcheck against a 503 = %v (exit %d), want exit 1 naming the status", err, exitCode(err))
	}
}

// -healthcheck is answered alone: with other flags it is refused, and -h
// still says what it does.
func TestHealthcheckOnlyAlone(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-healthcheck", "-monitor-only"}, env(nil), &stdout, &stderr)
	if exitCode(err) != 2 {
		t.Errorf("-healthcheck with another flag = %v (exit %d), want usage error exit 2", err, exitCode(err))
	}
	stderr.Reset()
	_ = run(context.Background(), []string{"-h"}, env(nil), &stdout, &stderr)
	if !strings.Contains(stderr.String()+stdout.String(), "worker -healthcheck") {
		t.Errorf("worker -h does not mention -healthcheck:\n%s", stderr.String())
	}
}
