package redisconn

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/hibiken/asynq"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379", "redis://127.0.0.1:6379"},
		{"redis://user:pass@h:6379/2", "redis://user:xxxxx@h:6379/2"},
		{"redis://:pass@h:6379", "redis://:xxxxx@h:6379"},
		{"redis://u:@h", "redis://u:xxxxx@h"},
		{"rediss://u:p@ss@h", "rediss://u:xxxxx@h"},
		{"redis://secret@h", "redis://xxxxx@h"},
		{"redis://default@h", "redis://xxxxx@h"},
		{"redis-socket://secret@/run/redis.sock", "redis-socket://xxxxx@/run/redis.sock"},
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
		// go-redis sends a lone userinfo of redis:// and rediss:// as the
		// user name: no secret, and the word stays wherever it appears.
		{"queue default: dial redis://default@h failed", "redis://default@h", "queue default: dial redis://default@h failed"},
		{"queue default: timeout", "rediss://default@h", "queue default: timeout"},
		{"user default: wrong password s3cret", "redis://default:s3cret@h", "user default: wrong password xxxxx"},
		// This package sends it as the password of socket and Sentinel URLs.
		{"lone secret", "redis-sentinel://secret@h:26379?master=m", "lone xxxxx"},
		{"lone secret", "redis-socket://secret@/run/redis.sock", "lone xxxxx"},
		{"no scheme: user", "user@h", "no scheme: user"},
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

// Redact masks exactly what Options sends as the password, and never the
// user name.
func TestRedactMasksWhatOptionsSendsAsThePassword(t *testing.T) {
	for _, u := range []string{
		"redis://secret@h:6379",
		"rediss://secret@h:6379",
		"redis://name:secret@h:6379",
		"redis-socket://secret@/run/redis.sock",
		"redis-socket://name:secret@/run/redis.sock",
		"redis-sentinel://secret@h:26379?master=m",
		"redis-sentinel://name:secret@h:26379?master=m",
	} {
		opt, err := Settings{URL: u}.Options()
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		var user, pass string
		switch o := opt.(type) {
		case asynq.RedisClientOpt:
			user, pass = o.Username, o.Password
		case asynq.RedisFailoverClientOpt:
			user, pass = o.Username, o.Password
		default:
			t.Fatalf("%s: options of type %T", u, opt)
		}
		text := "user=" + user + " password=" + pass
		want := "user=" + user + " password="
		if pass != "" {
			want += masked
		}
		if got := Redact(text, u); got != want {
			t.Errorf("%s: Redact(%q) = %q, want %q", u, text, got, want)
		}
	}
}
