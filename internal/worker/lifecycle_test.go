package worker

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
)

func TestLifecycleStopsStartedComponentsInReverse(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name      string
		failAt    string
		wantErr   error
		wantStops []string
	}{
		{name: "all start", wantStops: []string{"c", "a"}},
		{name: "a start fails", failAt: "c", wantErr: boom, wantStops: []string{"a"}},
		{name: "the first fails", failAt: "a", wantErr: boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stops []string
			c := func(name string, hasStop bool) component {
				return component{name, func() (func(), error) {
					if name == tc.failAt {
						return nil, boom
					}
					if !hasStop {
						return nil, nil
					}
					return func() { stops = append(stops, name) }, nil
				}}
			}
			var l lifecycle
			err := l.start(c("a", true), c("b", false), c("c", true), c("d", false))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("start = %v, want %v", err, tc.wantErr)
			}
			l.stop(slog.New(slog.DiscardHandler))
			if !slices.Equal(stops, tc.wantStops) {
				t.Errorf("stopped %v, want %v", stops, tc.wantStops)
			}
			l.stop(slog.New(slog.DiscardHandler))
			if !slices.Equal(stops, tc.wantStops) {
				t.Errorf("a second stop stopped again: %v", stops)
			}
		})
	}
}

func TestGoEachStopWaitsForEveryLoop(t *testing.T) {
	ended := make(chan string, 2)
	loop := func(name string) func(context.Context) {
		return func(ctx context.Context) {
			<-ctx.Done()
			ended <- name
		}
	}
	stop := goEach(loop("x"), loop("y"))
	stop()
	if len(ended) != 2 {
		t.Fatalf("%d loops had returned when stop returned, want 2", len(ended))
	}
}
