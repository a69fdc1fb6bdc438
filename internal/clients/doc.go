// Package clients holds typed HTTP clients for the two upstream APIs
// refreshq calls: bundle.social's profile refresh and hooked.so's account
// refresh.
//
// Upstreams is the table of those APIs, one entry for each provider of
// tasks.Providers(): its name, default base URL and budget, and a
// constructor of its Refresher. The handler, the worker's settings and its
// status page read every provider from it, so a new provider is one entry
// in tasks plus its client and entry here.
//
// Each call sends one request and returns either the decoded response, with
// the raw body kept verbatim for the results stream, or one of three error
// types that callers tell apart with errors.As: *APIError (the upstream
// answered non-2xx), *InvalidResponseError (a 2xx that is not the documented
// success) and *TransportError (no complete response). Bodies are read up to
// fixed bounds and the API key never appears in an error string.
//
// It is not for retrying, rate limiting or deciding what an error means for
// a task: those belong to the worker. Nothing here reads the environment;
// keys and base URLs come from the caller.
package clients
