package enqueueapi

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
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
	const size = 10 << 20
	random := make([]byte, size)
	_, _ = rand.Read(random)
	fill := func(head, unit, tail string) []byte {
		var b bytes.Buffer
		b.WriteString(head)
		for b.Len() < size-len(tail) {
			b.WriteString(unit)
		}
		b.WriteString(tail)
		return b.Bytes()
	}
	item := `{"provider":"hooked","account_id":"a","queue":"` + f.queue1 + `"},`
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"random bytes", random},
		{"array of numbers", fill("[", "1,", "1]")},
		{"one huge string", fill(`{"provider":"`, "a", `"}`)},
		{"huge meta", fill(`{"provider":"hooked","account_id":"a","meta":{`, `"k":1,`, `"z":1}}`)},
		{"deep nesting", fill("", "[", "")},
		{"deep nesting in meta", fill(`{"provider":"hooked","account_id":"a","meta":`, `{"a":`, "")},
		{"many valid refreshes", fill("[", item, strings.TrimSuffix(item, ",")+"]")},
		{"many keys", fill(`{`, `"provider":"hooked",`, `"x":1}`)},
		{"fat refreshes past the body cap", fill("[", `{"provider":"hooked","account_id":"a","meta":{"pad":"`+strings.Repeat("x", 4000)+`"}},`, "{}]")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop := heapPeak()
			start := time.Now()
			req, err := http.NewRequest("POST", f.srv.URL+"/v1/refreshes", bytes.NewReader(tc.body))
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
