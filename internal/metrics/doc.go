// Package metrics holds refreshq's Prometheus metrics: the counters and
// gauges the worker updates as it runs tasks and calls upstreams, and a
// collector that reads queue sizes from asynq's Inspector when scraped.
//
// Metrics are registered on a registry the caller gives rather than the
// global one, so a process (or a test) can hold several without name
// clashes. The names docs/reference.md lists are stable: dashboards depend
// on them.
//
// It is not a place for business logic: callers decide what happened and
// only report it here.
package metrics
