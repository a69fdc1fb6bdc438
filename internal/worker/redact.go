package worker

import (
	"net/url"
	"strings"
)

// replaceSecret removes the password of redisURL from s.
func replaceSecret(s, redisURL string) string {
	u, err := url.Parse(redisURL)
	if err != nil || u.User == nil {
		return s
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		s = strings.ReplaceAll(s, pw, "xxxxx")
	}
	return s
}
