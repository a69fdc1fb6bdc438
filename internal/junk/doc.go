// Package junk makes request bodies of 10 MiB shaped to hurt a reader
// that buffers or recurses: random bytes, long arrays, huge strings, deep
// nesting, many keys, refreshes past the body cap. The enqueue API's own
// tests and the end-to-end tests send the same bodies, in-process and to
// a worker binary.
//
// It is for tests only.
package junk
