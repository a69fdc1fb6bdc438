package redisconn

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379", "redis://127.0.0.1:6379"},
		{"redis://user:pass@h:6379/2", "redis://user:xxxxx@h:6379/2"},
		{"redis://:pass@h:6379", "redis://:xxxxx@h:6379"},
		{"redis://u:@h", "redis://u:xxxxx@h"},
		{"rediss://u:p@ss@h", "rediss://u:xxxxx@h"},
		{"redis://secret@h", "redis://xxxxx@h"},
		{"user@h", "user@h"},
		{"u:pw@h", "u:xxxxx@h"},
		{"redis-sentinel://:pw@h1:26379,h2:26379?master=m", "redis-sentinel://:xxxxx@h1:26379,h2:26379?master=m"},
		{"not a url", "not a url"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ text, url, want string }{
		{"dial redis://u:s3cret@h failed: s3cret", "redis://u:s3cret@h", "dial redis://u:xxxxx@h failed: xxxxx"},
		{"NOAUTH p@ss rejected (p%40ss)", "redis://u:p%40ss@h", "NOAUTH xxxxx rejected (xxxxx)"},
		{"no password here", "redis://h:6379", "no password here"},
		{"lone secret", "redis://secret@h", "lone xxxxx"},
	} {
		if got := Redact(tc.text, tc.url); got != tc.want {
			t.Errorf("Redact(%q, %q) = %q, want %q", tc.text, tc.url, got, tc.want)
		}
	}
}

// The masked error still matches what it wraps.
func TestRedactErrorKeepsTheChain(t *testing.T) {
	inner := fmt.Errorf("open redis://u:s3cret@h: %w", fs.ErrNotExist)
	err := RedactError(inner, "redis://u:s3cret@h")
	if err.Error() != "open redis://u:xxxxx@h: file does not exist" {
		t.Errorf("text %q still shows the password or lost its words", err)
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, inner) {
		t.Errorf("errors.Is lost the chain of %v", err)
	}
	if RedactError(nil, "redis://u:s3cret@h") != nil {
		t.Error("RedactError(nil) is not nil")
	}
	if plain := errors.New("no secret"); RedactError(plain, "redis://u:s3cret@h") != plain {
		t.Error("an error without the password is not returned as is")
	}
}
