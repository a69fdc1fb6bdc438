package config

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/refreshq/refreshq/tasks"
)

// FuzzParseQueues feeds QUEUES. Queues it accepts have names asynq can
// key, weights ≥ 1, and read back the same when written out again.
func FuzzParseQueues(f *testing.F) {
	for _, s := range []string{DefaultQueues, "", "default=1", "a=1,a=2", "a:b=1", "a=0", "a=-1", "a=1,,b=2", " a = 3 ", "{x}=1", "a=99999999999999999999", "a=1=2", "=1", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQueues(s)
		if err != nil {
			return
		}
		var parts []string
		w := q.Weights()
		for _, name := range q.Names() {
			if err := tasks.CheckQueueName(name); err != nil {
				t.Fatalf("ParseQueues(%q) accepted queue %q: %v", s, name, err)
			}
			if w[name] < 1 {
				t.Fatalf("ParseQueues(%q) gave %q weight %d", s, name, w[name])
			}
			parts = append(parts, name+"="+strconv.Itoa(w[name]))
		}
		back, err := ParseQueues(strings.Join(parts, ","))
		if err != nil || !slices.Equal(back.Names(), q.Names()) {
			t.Fatalf("ParseQueues(%q) = %v, which reads back as %v, %v", s, q.Names(), back.Names(), err)
		}
	})
}
