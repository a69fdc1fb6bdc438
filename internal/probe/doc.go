// Package probe sends a test's HTTP request to a server the test did not
// build the handler of, a worker in the same process or a binary, and
// gives back the status code, which is what such tests assert.
//
// It is for tests only.
package probe
