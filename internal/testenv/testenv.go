package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// InCI reports whether CI is set to a true value (CI=true, as GitHub
// Actions, GitLab and .ci/run set it).
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Missing ends the test for want of what: it fails under CI=true and is
// skipped otherwise. hint says how to get it, e.g. "apt-get install -y
// chromium".
func Missing(t testing.TB, what, hint string) {
	t.Helper()
	msg := fmt.Sprintf("%s is missing; %s", what, hint)
	if InCI() {
		t.Fatalf("%s (CI=true: a test may not skip for want of it)", msg)
	}
	t.Skip("SKIPPED: " + msg)
}

// MissingMain is Missing for a TestMain, which has no t: it exits 1 under
// CI=true and 0 otherwise, after saying why.
func MissingMain(what, hint string) {
	msg := fmt.Sprintf("%s is missing; %s", what, hint)
	if InCI() {
		fmt.Fprintf(os.Stderr, "FAIL: %s (CI=true: tests may not skip for want of it)\n", msg)
		os.Exit(1)
	}
	fmt.Println("SKIPPED: " + msg)
	os.Exit(0)
}

// redisHint says how to get a Redis for the tests.
const redisHint = "start Redis and set REDIS_URL=redis://127.0.0.1:6379 (.ci/run does both)"

// RedisURL returns REDIS_URL for a test that can fall back to an embedded
// miniredis: "" means use miniredis. Under CI=true an unset REDIS_URL
// fails the test instead, since miniredis does not run asynq's and
// refreshq's scripts exactly as Redis does.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" && InCI() {
		Missing(t, "REDIS_URL", redisHint)
	}
	return u
}

// RequireRedisURL returns REDIS_URL for a test that needs a real Redis.
func RequireRedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		Missing(t, "REDIS_URL", redisHint)
	}
	return u
}

// RequireRedisURLMain is RequireRedisURL for a TestMain.
func RequireRedisURLMain() string {
	u := os.Getenv("REDIS_URL")
	if u == "" {
		MissingMain("REDIS_URL", redisHint)
	}
	return u
}

// Program returns the path of program (a name looked up on PATH, or an
// absolute path), or ends the test as Missing with hint.
func Program(t testing.TB, program, hint string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		Missing(t, program, hint)
	}
	return p
}

// WriteFile writes content to a file called name in a directory of its
// own that the test removes when it ends, readable by the owner only as
// a secret file should be, and returns its path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
