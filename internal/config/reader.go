package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/refreshq/refreshq/internal/smallfile"
)

// maxSecretFile bounds what a *_FILE variable may name: a secret is a line,
// and a path to something else (a log, a device) must not fill memory.
const maxSecretFile = 64 << 10

// reader reads settings from the environment and flags, collecting every
// problem so LoadWorker can report them all at once.
type reader struct {
	getenv func(string) string
	flags  map[string]string // flag name → value given on the command line
	errs   []error
	seen   map[string][2]string
}

// fail records a problem.
func (r *reader) fail(format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

// raw is the setting's value exactly as given (a secret's file without its
// trailing newline), with source naming where it came from for messages,
// or "" when it is not set. The default is not applied.
func (r *reader) raw(name string) (value, source string) {
	if got, ok := r.seen[name]; ok {
		return got[0], got[1]
	}
	value, source = r.read(name)
	if r.seen == nil {
		r.seen = map[string][2]string{}
	}
	r.seen[name] = [2]string{value, source}
	return value, source
}

// read is raw without the memo, which keeps a bad *_FILE reported once.
func (r *reader) read(name string) (value, source string) {
	s, _ := lookupSetting(name)
	if s.Flag != "" {
		if v, ok := r.flags[s.Flag]; ok && v != "" {
			return v, "-" + s.Flag
		}
	}
	v := r.getenv(name)
	if !s.Secret {
		return v, name
	}
	file := r.getenv(name + "_FILE")
	switch {
	case file == "":
		return v, name
	case v != "":
		r.fail("both %s and %s_FILE are set; set only one", name, name)
		return "", name
	}
	b, err := readSecretFile(file)
	if err != nil {
		r.fail("%s_FILE: %v", name, err)
		return "", name + "_FILE"
	}
	return b, name + "_FILE"
}

// readSecretFile reads a secret from path, dropping one trailing newline
// (editors and `echo` add one; the secret does not contain it).
func readSecretFile(path string) (string, error) {
	b, err := smallfile.Read(path, maxSecretFile)
	var big *smallfile.TooLargeError
	switch {
	case errors.As(err, &big):
		return "", fmt.Errorf("the file %s is over %d KiB; it should hold only the secret", path, maxSecretFile>>10)
	case err != nil:
		return "", fmt.Errorf("cannot read the secret file: %w", err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// isSet reports whether the setting was given at all.
func (r *reader) isSet(name string) bool {
	v, _ := r.raw(name)
	return strings.TrimSpace(v) != ""
}

// str is the setting's trimmed value, or its default from Settings.
func (r *reader) str(name string) string {
	v, _ := r.strFrom(name)
	return v
}

func (r *reader) strFrom(name string) (value, source string) {
	v, src := r.raw(name)
	if v = strings.TrimSpace(v); v != "" {
		return v, src
	}
	s, _ := lookupSetting(name)
	return s.Default, src
}

// duration is a positive duration.
func (r *reader) duration(name string) time.Duration {
	v, src := r.strFrom(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		s, _ := lookupSetting(name)
		r.fail("%s=%q is not a positive duration; write e.g. %s", src, v, s.Default)
		return r.defaultDuration(name)
	}
	return d
}

func (r *reader) defaultDuration(name string) time.Duration {
	s, _ := lookupSetting(name)
	d, _ := time.ParseDuration(s.Default)
	return d
}

// integer is a whole number ≥ min; unset with no default is 0.
func (r *reader) integer(name string, min int) int {
	v, src := r.strFrom(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		r.fail("%s=%q is not a whole number ≥ %d", src, v, min)
		s, _ := lookupSetting(name)
		n, _ = strconv.Atoi(s.Default)
	}
	return n
}

// oneOf is one of the allowed values; the message lists them.
func (r *reader) oneOf(name string, allowed ...string) string {
	v, src := r.strFrom(name)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail("%s=%q: use %s", src, v, orList(allowed))
	s, _ := lookupSetting(name)
	return s.Default
}

func orList(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
