package results_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/results"
)

// Recent returns the newest entries first, without the upstream's body or
// meta, and with long errors cut, so a status page's read stays small.
func TestRecentIsNewestFirstAndSmall(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	stream := redistest.Name(t, "results_")
	p := results.NewPublisher(rdb, stream, time.Minute)
	var ids []string
	for i := range 5 {
		e := entry(fmt.Sprintf("t%d", i), results.StatusFailed)
		e.Result, e.ErrorKind = strings.Repeat("b", 100_000), results.KindServer
		e.Error = strings.Repeat("é", 1000) // multi-byte, so the cut may split one
		if _, _, err := p.Publish(ctx, e, 1); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.TaskID)
	}
	t.Cleanup(func() {
		rdb.Del(ctx, stream)
		for _, id := range ids {
			rdb.Del(ctx, results.IndexKey(stream, id))
		}
	})
	got, err := results.NewReader(rdb, stream).Recent(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].TaskID != "t4" || got[2].TaskID != "t2" {
		t.Fatalf("got %d entries starting %+v, want t4, t3, t2", len(got), got)
	}
	for _, e := range got {
		if e.Result != "" || e.Meta != "" {
			t.Errorf("entry %s carries its body or meta", e.TaskID)
		}
		if len(e.Error) > 400 || !strings.HasPrefix(e.Error, "éé") {
			t.Errorf("error of %d bytes, want it cut to about 300: %q", len(e.Error), e.Error[:20])
		}
		if e.Status != results.StatusFailed || e.ErrorKind == "" {
			t.Errorf("entry lost its status or error kind: %+v", e)
		}
	}
}
