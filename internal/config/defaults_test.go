package config

import (
	"testing"

	"github.com/refreshq/refreshq/handlers"
)

// The worker's defaults for the handler's settings are the handler's own,
// so a server that mounts the handler behaves as the worker does.
func TestDefaultsAreTheHandlers(t *testing.T) {
	pairs := []struct {
		name          string
		config, final any
	}{
		{"MAX_RETRIES", DefaultMaxRetries, handlers.DefaultMaxRetries},
		{"RETRY_INITIAL", DefaultRetryInitial, handlers.DefaultRetryInitial},
		{"RETRY_MAX_INTERVAL", DefaultRetryMaxInterval, handlers.DefaultRetryMax},
		{"UPSTREAM_TIMEOUT", DefaultUpstreamTimeout, handlers.DefaultUpstreamTimeout},
		{"TASK_DEADLINE", DefaultTaskDeadline, handlers.DefaultTaskDeadline},
	}
	for _, p := range pairs {
		if p.config != p.final {
			t.Errorf("%s: the worker's default is %v, the handler's %v", p.name, p.config, p.final)
		}
	}
}
