// Command worker runs refresh tasks: it takes them from Redis through
// asynq, calls bundle.social or hooked.so within the fleet's rate limits,
// and publishes one result per task to the results stream. `worker -demo`
// runs the whole system with nothing installed.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/refreshq/refreshq/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for bad usage and configuration, 1 for everything else.
func exitCode(err error) int {
	var usage *config.UsageError
	if errors.As(err, &usage) {
		return 2
	}
	return 1
}
