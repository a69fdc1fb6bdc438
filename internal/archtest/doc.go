// Package archtest holds the tests that keep refreshq's shape: which
// packages may import which, and that the public packages' exported API
// names no type from internal/. It has no code of its own.
package archtest
