// Package testenv decides what a test does when something it needs is
// missing from the machine: REDIS_URL, redis-server, Chromium, promtool,
// kubectl, node. On a developer's machine the test is skipped with a line
// saying how to get it; under CI=true it fails, so a CI run that lacks a
// tool cannot pass by testing less.
//
// It also writes the small files tests hand to the code they test
// (WriteFile).
//
// It is for tests only.
package testenv
