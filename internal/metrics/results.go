package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/results"
)

// resultsReadTimeout bounds one scrape's read of the results stream.
const resultsReadTimeout = 2 * time.Second

var (
	resultsEntriesDesc = prometheus.NewDesc("refreshq_results_stream_entries",
		"Entries in the results stream (XLEN).", nil, nil)
	resultsLagDesc = prometheus.NewDesc("refreshq_results_consumer_lag",
		"Entries of the results stream not yet delivered to a consumer group (XINFO GROUPS lag).",
		[]string{"group"}, nil)
	resultsPendingDesc = prometheus.NewDesc("refreshq_results_consumer_pending",
		"Entries delivered to a consumer group and not yet acknowledged.",
		[]string{"group"}, nil)
)

// resultsCollector reads the results stream's length and its consumer
// groups' lag at each scrape (results.Stats: one round trip).
type resultsCollector struct {
	rdb    redis.UniversalClient
	stream string
	skip   func() bool
}

// RegisterResults adds to reg gauges of the results stream: its length and, per
// consumer group, the entries not yet delivered and not yet acknowledged.
// They are skipped while skip reports Redis away.
func RegisterResults(reg prometheus.Registerer, rdb redis.UniversalClient, stream string, skip func() bool) error {
	return reg.Register(resultsCollector{rdb: rdb, stream: stream, skip: skip})
}

func (c resultsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- resultsEntriesDesc
	ch <- resultsLagDesc
	ch <- resultsPendingDesc
}

func (c resultsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.skip != nil && c.skip() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), resultsReadTimeout)
	defer cancel()
	st, err := results.Stats(ctx, c.rdb, c.stream)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(resultsEntriesDesc, prometheus.GaugeValue, float64(st.Entries))
	for _, g := range st.Groups {
		ch <- prometheus.MustNewConstMetric(resultsLagDesc, prometheus.GaugeValue, float64(g.Lag), g.Name)
		ch <- prometheus.MustNewConstMetric(resultsPendingDesc, prometheus.GaugeValue, float64(g.Pending), g.Name)
	}
}
