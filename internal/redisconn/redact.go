package redisconn

import (
	"net/url"
	"strings"
)

// masked stands where a Redis password was.
const masked = "xxxxx"

// userinfoOf splits u, which need not be a valid URL, around its
// userinfo: scheme is empty when u has none, info is what comes before the
// last "@" and has is false when there is no "@".
func userinfoOf(u string) (scheme, info, host string, has bool) {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		scheme, rest = "", u
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return scheme, "", rest, false
	}
	return scheme, rest[:at], rest[at+1:], true
}

// RedactURL returns u with its password replaced by xxxxx, for messages:
// redis://user:secret@host → redis://user:xxxxx@host. It works on strings
// that are not valid URLs too. A userinfo with no colon after a scheme
// (redis://secret@host) is masked whole: go-redis sends it as a user
// name, but redis-cli, other clients and this package's socket and
// Sentinel URLs send it as the password, so a URL shown to a user cannot
// tell which the operator meant.
func RedactURL(u string) string {
	scheme, info, host, has := userinfoOf(u)
	if !has {
		return u
	}
	prefix := ""
	if scheme != "" {
		prefix = scheme + "://"
	}
	if user, _, found := strings.Cut(info, ":"); found {
		return prefix + user + ":" + masked + "@" + host
	}
	if scheme == "" {
		return u
	}
	return prefix + masked + "@" + host
}

// password is what Settings.Options sends to Redis as the password of
// redisURL: the part of its userinfo after the first colon, or, for the
// schemes whose userinfo this package reads itself (see credentials), a
// userinfo with no colon. go-redis, which reads redis:// and rediss://,
// takes a lone userinfo for a user name, so there it is none.
func password(redisURL string) string {
	scheme, info, _, has := userinfoOf(redisURL)
	if !has {
		return ""
	}
	if _, pw, found := strings.Cut(info, ":"); found {
		return pw
	}
	if scheme == "redis-socket" || scheme == "redis-sentinel" {
		return info
	}
	return ""
}

// Redact returns s with the password of redisURL replaced by xxxxx, as
// written in the URL and decoded: for an error or a log line that may
// quote it. Only the password is masked: a user name is no secret, and
// masking it would blank that word (a queue named "default", say)
// wherever the text has it.
func Redact(s, redisURL string) string {
	pass := password(redisURL)
	if pass == "" {
		return s
	}
	s = strings.ReplaceAll(s, pass, masked)
	if plain, err := url.PathUnescape(pass); err == nil && plain != "" && plain != pass {
		s = strings.ReplaceAll(s, plain, masked)
	}
	return s
}

// RedactError returns err with the password of redisURL masked in its
// text; errors.Is and errors.As still see err and what it wraps.
func RedactError(err error, redisURL string) error {
	if err == nil {
		return nil
	}
	msg := Redact(err.Error(), redisURL)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
