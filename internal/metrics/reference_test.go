package metrics

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// refreshqMetricNames are the names of every refreshq_* metric a worker
// registers.
func refreshqMetricNames(t *testing.T) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 1000)
	reg := NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	reg.Describe(ch)
	NewQueueCollector(nil, nil).Describe(ch)
	resultsCollector{}.Describe(ch)
	close(ch)
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		m := fq.FindStringSubmatch(d.String())
		if m != nil && strings.HasPrefix(m[1], "refreshq_") {
			names = append(names, m[1])
		}
	}
	if len(names) == 0 {
		t.Fatal("found no refreshq_ metric")
	}
	return names
}

// docs/reference.md names every metric, so a dashboard author can find it.
func TestReferenceNamesEveryMetric(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range refreshqMetricNames(t) {
		if !strings.Contains(string(b), "`"+name+"`") {
			t.Errorf("docs/reference.md does not name the metric %s; add it to the Metrics table", name)
		}
	}
}
