// Package poll waits in a test for something another goroutine or process
// brings about: a log line, a result in the stream, a worker ready.
//
// It is for tests only.
package poll
