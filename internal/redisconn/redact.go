package redisconn

import (
	"net/url"
	"strings"
)

// masked stands where a Redis password was.
const masked = "xxxxx"

// credentialsOf splits u, which need not be a valid URL, around the
// password its userinfo holds: the part after the first colon (user keeps
// the colon), or, after a scheme, a userinfo with no colon
// (redis://secret@host), which may be a password. pass is empty when u
// carries none.
func credentialsOf(u string) (prefix, user, pass, host string) {
	scheme, rest, ok := strings.Cut(u, "://")
	if ok {
		prefix = scheme + "://"
	} else {
		rest = u
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return prefix, "", "", rest
	}
	info, host := rest[:at], rest[at+1:]
	if name, pw, found := strings.Cut(info, ":"); found {
		return prefix, name + ":", pw, host
	}
	if !ok {
		return prefix, info, "", host
	}
	return prefix, "", info, host
}

// RedactURL returns u with its password replaced by xxxxx, for messages:
// redis://user:secret@host → redis://user:xxxxx@host. It works on strings
// that are not valid URLs too.
func RedactURL(u string) string {
	prefix, user, pass, host := credentialsOf(u)
	if pass == "" && !strings.HasSuffix(user, ":") {
		return u
	}
	return prefix + user + masked + "@" + host
}

// Redact returns s with the password of redisURL replaced by xxxxx, as
// written in the URL and decoded: for an error or a log line that may
// quote it.
func Redact(s, redisURL string) string {
	_, _, pass, _ := credentialsOf(redisURL)
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
