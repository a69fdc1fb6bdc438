// Package enqueueapi is the HTTP enqueue API for producers that are not
// written in Go: POST /v1/refreshes enqueues one refresh or a batch, with the
// same validation and semantics as the enqueue CLI, and GET
// /v1/refreshes/{task_id} returns a task's result. Every request needs the
// bearer token (ENQUEUE_TOKEN). docs/openapi.yaml describes it.
//
// It is a plain http.Handler over a *client.Client; the worker mounts it
// when ENQUEUE_TOKEN is set. It is not for monitoring or health checks (see
// the worker's HTTP server).
package enqueueapi
