// Command testsim serves refreshq's upstream simulator for the TypeScript
// SDK's tests, which start a real worker against it. It prints
// "SIMULATOR_URL=http://127.0.0.1:PORT/sim" on stdout once it listens, and
// runs until stdin closes or it is signalled, so it dies with the test
// process that started it.
//
// Subjects behave as in the demo (internal/simulator's DemoScript): one
// containing "slow" takes 2 s, "gone" gets a 404, and every other subject
// succeeds at once. It is a test fixture, not a refreshq command.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/refreshq/refreshq/internal/simulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sim := simulator.New(simulator.Options{Prefix: "/sim", Script: simulator.DemoScript})
	defer sim.Close()
	srv := &http.Server{Handler: sim}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Fprintf(stdout, "SIMULATOR_URL=http://%s/sim\n", ln.Addr())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin) // returns when the parent goes away
		cancel()
	}()
	<-ctx.Done()
	return nil
}
