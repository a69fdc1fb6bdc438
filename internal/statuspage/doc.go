// Package statuspage serves the upstreams status page, /upstreams/ on
// HTTP_ADDR: for each provider and API key (shown only by its key id), the
// fleet-wide state Redis holds (each budget window's use, any cooldown with
// its cause and time left, the breaker, the daily cap used), the waits this
// process counted, and the last results with their error kinds.
//
// The page refreshes itself every few seconds. One refresh costs a fixed
// number of Redis round trips (see Page.Cost) however many tasks run. It
// renders through html/template, since subjects and error strings come
// from outside.
//
// It does not decide who may see the page: opshttp mounts it behind the
// same rules as the web UI.
package statuspage
