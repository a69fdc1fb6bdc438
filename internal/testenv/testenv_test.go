package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissing runs a test that needs a program that does not exist, in a
// child process, with and without CI=true, and checks that CI fails it
// while a developer's machine skips it.
func TestMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Program(t, "refreshq-no-such-program", "install it")
		t.Fatal("Program returned for a missing program")
		return
	}
	for _, tc := range []struct {
		ci       string
		wantFail bool
		wantText string
	}{
		{"true", true, "CI=true: a test may not skip"},
		{"1", true, "CI=true: a test may not skip"},
		{"", false, "SKIPPED: refreshq-no-such-program is missing; install it"},
		{"false", false, "SKIPPED"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMissing$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Errorf("child failed = %v, want %v\n%s", failed, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.wantText) {
				t.Errorf("child output lacks %q:\n%s", tc.wantText, out)
			}
		})
	}
}

// TestRedisURL: an unset REDIS_URL means miniredis on a developer's
// machine and a failure under CI=true.
func TestRedisURL(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		t.Logf("url=%q", RedisURL(t))
		return
	}
	for _, tc := range []struct {
		ci, url  string
		wantFail bool
		wantText string
	}{
		{"true", "", true, "REDIS_URL is missing"},
		{"", "", false, `url=""`},
		{"true", "redis://127.0.0.1:6379", false, `url="redis://127.0.0.1:6379"`},
	} {
		t.Run("CI="+tc.ci+",REDIS_URL="+tc.url, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRedisURL$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+tc.ci, "REDIS_URL="+tc.url)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Errorf("child failed = %v, want %v\n%s", failed, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.wantText) {
				t.Errorf("child output lacks %q:\n%s", tc.wantText, out)
			}
		})
	}
}
