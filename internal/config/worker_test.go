package config

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/refreshq/refreshq/tasks"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// provider returns the settings c holds for the provider id.
func provider(t *testing.T, c Worker, id string) Provider {
	t.Helper()
	for _, p := range c.Providers {
		if p.Name == id {
			return p
		}
	}
	t.Fatalf("no settings for provider %s in %+v", id, c.Providers)
	return Provider{}
}

func TestLoadWorkerDefaults(t *testing.T) {
	c, err := LoadWorker(nil, envOf(map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if b := provider(t, c, tasks.ProviderBundleSocial).Budget.String(); b != "5/1s,20/10s,100/1m" {
		t.Errorf("bundle budget %s, want bundle.social's documented 5/1s,20/10s,100/1m", b)
	}
	if b := provider(t, c, tasks.ProviderHooked).Budget; len(b) != 0 {
		t.Errorf("hooked budget %s, want off", b)
	}
	if c.MaxRetries != 10 || c.RetryInitial != time.Second || c.RetryMaxInterval != 5*time.Minute ||
		c.UpstreamTimeout != 30*time.Second || c.TaskDeadline != 24*time.Hour || c.ShutdownGrace != 25*time.Second {
		t.Errorf("retry/timeouts defaults wrong: %+v", c)
	}
	if c.ResultsStream != "refresh:results" || c.HTTPAddr != "127.0.0.1:8080" || c.Queues.String() != "critical, default, low" {
		t.Errorf("defaults: stream %s addr %s queues %s", c.ResultsStream, c.HTTPAddr, c.Queues)
	}
	if w := c.Queues.Weights(); w["critical"] != 6 || w["default"] != 3 || w["low"] != 1 {
		t.Errorf("queue weights %v", w)
	}
}

func TestLoadWorkerReportsEveryProblem(t *testing.T) {
	env := map[string]string{
		"REDIS_URL":          "http://:hunter2@host:6379",
		"BUNDLE_SOCIAL_RATE": "5/0s",
		"MAX_RETRIES":        "-1",
		"RETRY_INITIAL":      "soon",
		"QUEUES":             "critical=0",
		"HTTP_ADDR":          "8080",
		"MONITOR_USER":       "admin",
		"PPROF":              "yes",
	}
	_, err := LoadWorker(nil, envOf(env), io.Discard)
	var usage *UsageError
	if !errors.As(err, &usage) {
		t.Fatalf("err = %v, want a UsageError", err)
	}
	for _, name := range []string{"REDIS_URL", "BUNDLE_SOCIAL_RATE", "MAX_RETRIES", "RETRY_INITIAL", "QUEUES", "HTTP_ADDR", "MONITOR_PASSWORD", "PPROF"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error reveals the Redis password:\n%v", err)
	}
}

func TestLoadWorkerNeedsRedisOutsideDemo(t *testing.T) {
	_, err := LoadWorker(nil, envOf(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL is not set") || !strings.Contains(err.Error(), "-demo") {
		t.Fatalf("err = %v; want REDIS_URL is not set, pointing at -demo", err)
	}
	if _, err := LoadWorker([]string{"-demo"}, envOf(nil), io.Discard); err != nil {
		t.Fatalf("-demo without REDIS_URL: %v", err)
	}
}

func TestParseQueues(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"", "critical, default, low", ""},
		{"a=1", "a", ""},
		{" a = 2 , b=1", "a, b", ""},
		{"a", "", "name=weight"},
		{"a=1,a=2", "", "twice"},
		{"a=x", "", "whole number"},
	}
	for _, tt := range tests {
		q, err := ParseQueues(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseQueues(%q) = %v, want error mentioning %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || q.String() != tt.want {
			t.Errorf("ParseQueues(%q) = %q, %v; want %q", tt.in, q, err, tt.want)
		}
	}
}
