package enqueueapi

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/junk"
)

// heapPeak samples the live heap until stop is called and returns the
// highest value seen above the heap at the start.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var (
		mu   sync.Mutex
		peak = base
		done = make(chan struct{})
		out  = make(chan struct{})
	)
	go func() {
		defer close(out)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			v := read()
			mu.Lock()
			peak = max(peak, v)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-out
		mu.Lock()
		defer mu.Unlock()
		return peak - base
	}
}

// TestJunkBodies sends 10 MiB bodies of junk shaped to hurt a reader that
// buffers or recurses: each must be answered with a 4xx within 2 s, and the
// heap must not grow by 100 MB while it is read.
func TestJunkBodies(t *testing.T) {
	f := setup(t, "")
	// Valid refreshes too, on a queue the API serves: past the body cap
	// they are junk as well.
	item := `{"provider":"hooked","account_id":"a","queue":"` + f.queue1 + `"},`
	bodies := append(junk.Bodies(), junk.Body{Name: "many valid refreshes", Data: junk.Fill("[", item, strings.TrimSuffix(item, ",")+"]")})
	for _, tc := range bodies {
		t.Run(tc.Name, func(t *testing.T) {
			stop := heapPeak()
			start := time.Now()
			req, err := http.NewRequest("POST", f.srv.URL+"/v1/refreshes", bytes.NewReader(tc.Data))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			took := time.Since(start)
			grew := stop()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			t.Logf("%d after %s, heap grew %d MB: %.120s", resp.StatusCode, took.Round(time.Millisecond), grew>>20, b)
			if resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Errorf("status %d, want a 4xx", resp.StatusCode)
			}
			if took > 2*time.Second {
				t.Errorf("answered after %s, want within 2s", took)
			}
			if grew > 100<<20 {
				t.Errorf("heap grew %d MB, want < 100 MB", grew>>20)
			}
			if n := f.tasks(); n != 0 {
				t.Errorf("%d tasks enqueued from junk", n)
			}
		})
	}
}
