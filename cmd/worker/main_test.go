package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
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

	wants := []string{"REDIS_URL=redis://", "/monitoring/", "invalid_payload", "unknown_task_type", "not_found", "payment_required", "invalid_response", "ok   hooked        flaky-acc", "ok   hooked        busy-acc"}
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

// -healthcheck answers for a running worker (exit 0) and fails when none
// answers, without any other configuration.
func TestHealthcheck(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	addr := "127.0.0.1:" + freePort(t)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-demo"}, env(map[string]string{"HTTP_ADDR": addr}), &stdout, &stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for run(context.Background(), []string{"-healthcheck"}, env(map[string]string{"HTTP_ADDR": addr}), &stdout, &stderr) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("-healthcheck never passed against a running worker:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
	err := run(context.Background(), []string{"-healthcheck"}, env(map[string]string{"HTTP_ADDR": addr}), &stdout, &stderr)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("-healthcheck with no worker = %v (exit %d), want exit 1", err, exitCode(err))
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
