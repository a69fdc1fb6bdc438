package worker

import (
	"context"
	"log/slog"
	"sync"
)

// component is one part of a running worker. start brings it up and
// returns what brings it down again, nil when nothing needs to; a start
// that fails undoes its own partial work and returns no stop.
type component struct {
	name  string
	start func() (stop func(), err error)
}

// lifecycle starts components in order and stops the started ones in
// reverse, so that each part stops while the parts it uses still run.
type lifecycle struct {
	started []stopper
}

type stopper struct {
	name string
	stop func()
}

// start starts cs in order and returns the first failure, leaving the
// components started before it for stop.
func (l *lifecycle) start(cs ...component) error {
	for _, c := range cs {
		stop, err := c.start()
		if err != nil {
			return err
		}
		l.started = append(l.started, stopper{c.name, stop})
	}
	return nil
}

// stop stops the started components, the last started first.
func (l *lifecycle) stop(log *slog.Logger) {
	for i := len(l.started) - 1; i >= 0; i-- {
		s := l.started[i]
		if s.stop != nil {
			s.stop()
			log.Debug("stopped", "component", s.name)
		}
	}
	l.started = nil
}

// goEach runs each loop in a goroutine of its own; the returned stop ends
// their context and waits for all of them to return.
func goEach(loops ...func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Go(func() { loop(ctx) })
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
