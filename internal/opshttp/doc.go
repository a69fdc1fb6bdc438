// Package opshttp builds the worker's operator-facing HTTP surface on
// HTTP_ADDR: the asynq web UI (asynqmon) at /monitoring/, Prometheus
// metrics at /metrics, liveness at /healthz, readiness at /readyz, and
// pprof at /debug/pprof/ when switched on.
//
// It decides who may see the UI and pprof (basic auth with MONITOR_USER
// and MONITOR_PASSWORD; without them read-only, only on a loopback address
// and only for requests whose Host is a loopback name), refuses
// cross-site changes, and keeps metrics and health reachable on any
// address, because probes and scrapers carry no credentials. It sets each
// route's timeouts (NewHTTPServer). It does not start a listener or read
// the environment: the caller owns the listener and the configuration.
package opshttp
