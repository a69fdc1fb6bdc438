package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/refreshq/refreshq/internal/testenv"
	"github.com/refreshq/refreshq/tasks"
)

var update = flag.Bool("update", false, "rewrite the settings tables in README.md and docs/reference.md from Settings")

// LoadWorker reads every variable in Settings and nothing else, and
// LoadProducer every one marked Producer, so the table cannot leave out a
// variable either reads.
func TestLoadersReadExactlySettings(t *testing.T) {
	tests := []struct {
		name     string
		load     func(getenv func(string) string) error
		settings []Setting
	}{
		{"LoadWorker", func(getenv func(string) string) error {
			_, err := LoadWorker(nil, getenv, io.Discard)
			return err
		}, Settings},
		{"LoadProducer", func(getenv func(string) string) error {
			_, err := LoadProducer(getenv)
			return err
		}, ProducerSettings()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := map[string]bool{}
			getenv := func(k string) string {
				read[k] = true
				if k == "REDIS_URL" {
					return "redis://127.0.0.1:6379"
				}
				return ""
			}
			if err := tt.load(getenv); err != nil {
				t.Fatal(err)
			}
			want := variables(tt.settings)
			for k := range read {
				if !want[k] {
					t.Errorf("%s reads %s, which Settings does not list for it", tt.name, k)
				}
			}
			for k := range want {
				if !read[k] {
					t.Errorf("Settings lists %s, which %s never reads", k, tt.name)
				}
			}
		})
	}
}

// variables are the environment variables that settings name: each
// name, and NAME_FILE for a secret.
func variables(settings []Setting) map[string]bool {
	vars := map[string]bool{}
	for _, s := range settings {
		vars[s.Name] = true
		if s.Secret {
			vars[s.Name+"_FILE"] = true
		}
	}
	return vars
}

// The README and docs/reference.md say which variables `enqueue` reads:
// exactly the producer's settings, with the _FILE form of each secret.
func TestDocsNameTheProducersVariables(t *testing.T) {
	want := variables(ProducerSettings())
	varName := regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")
	for _, doc := range []string{"README.md", "docs/reference.md"} {
		b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(doc)))
		if err != nil {
			t.Fatal(err)
		}
		const lead = "`enqueue` reads"
		_, sentence, ok := strings.Cut(string(b), lead)
		if !ok {
			t.Errorf("%s does not say what %s", doc, lead)
			continue
		}
		sentence, _, _ = strings.Cut(sentence, ".")
		got := map[string]bool{}
		for _, m := range varName.FindAllStringSubmatch(sentence, -1) {
			got[m[1]] = true
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s%s.\nnames %v, want %v", doc, lead, sentence, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	}
}

// `worker -h` lists every variable with its default.
func TestWorkerHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	_, err := LoadWorker([]string{"-h"}, envOf(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	lines := strings.Split(out.String(), "\n")
	for _, s := range Settings {
		i := slices.IndexFunc(lines, func(l string) bool {
			f := strings.Fields(l)
			return len(f) > 0 && strings.TrimSuffix(f[0], ",") == s.Name
		})
		if i < 0 {
			t.Errorf("worker -h does not list %s:\n%s", s.Name, out.String())
			continue
		}
		if !strings.Contains(lines[i], plain(s.DefaultText())) {
			t.Errorf("worker -h line for %s lacks its default %q: %q", s.Name, s.DefaultText(), lines[i])
		}
		if s.Flag != "" && !strings.Contains(out.String(), "-"+s.Flag) {
			t.Errorf("worker -h does not list the flag -%s", s.Flag)
		}
	}
}

// The documented defaults are the ones LoadWorker applies: an unset
// variable and one set to its documented default load the same.
func TestDocumentedDefaultsAreApplied(t *testing.T) {
	base := map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"}
	unset, err := LoadWorker(nil, envOf(base), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	explicit := map[string]string{}
	for k, v := range base {
		explicit[k] = v
	}
	for _, s := range Settings {
		if s.Default != "" {
			explicit[s.Name] = s.Default
		}
	}
	set, err := LoadWorker(nil, envOf(explicit), io.Discard)
	if err != nil {
		t.Fatalf("the documented defaults do not load: %v", err)
	}
	set.HTTPAddrDefault = unset.HTTPAddrDefault
	if !reflect.DeepEqual(unset, set) {
		t.Errorf("unset and documented defaults differ:\nunset   %+v\ndefault %+v", unset, set)
	}
}

// The README's and docs/reference.md's settings tables are Settings,
// rendered; -update rewrites them.
func TestDocsMatchSettings(t *testing.T) {
	for _, doc := range []string{"README.md", "docs/reference.md"} {
		want := SettingsTable(doc)
		for _, m := range mdLink.FindAllStringSubmatch(want, -1) {
			target, _, _ := strings.Cut(m[2], "#")
			if _, err := os.Stat(filepath.Join("..", "..", filepath.Dir(doc), target)); err != nil {
				t.Errorf("%s: the settings table's link %s is broken: %v", doc, m[0], err)
			}
		}
		path := filepath.Join("..", "..", filepath.FromSlash(doc))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		start := strings.Index(text, settingsBegin)
		end := strings.Index(text, settingsEnd)
		if start < 0 || end < start {
			t.Fatalf("%s lacks the markers %s … %s around its settings table", doc, settingsBegin, settingsEnd)
		}
		got := text[start+len(settingsBegin)+1 : end]
		if got == want {
			continue
		}
		if *update {
			text = text[:start+len(settingsBegin)+1] + want + text[end:]
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s's settings table differs from config.Settings; run\n\tgo test ./internal/config -run TestDocsMatchSettings -update\ngot:\n%s\nwant:\n%s", doc, got, want)
	}
}

const (
	settingsBegin = "<!-- settings: rendered from internal/config.Settings -->"
	settingsEnd   = "<!-- end of settings -->"
)

func TestSecretFromFile(t *testing.T) {
	keyFile := testenv.WriteFile(t, "key", "s3cret-key\n")
	crlfFile := testenv.WriteFile(t, "crlf", "s3cret-key\r\n")
	bigFile := testenv.WriteFile(t, "big", strings.Repeat("x", maxSecretFile+1))
	tests := []struct {
		name    string
		env     map[string]string
		wantKey string
		wantErr []string // the error names these
	}{
		{"file, trailing newline dropped", map[string]string{"HOOKED_API_KEY_FILE": keyFile}, "s3cret-key", nil},
		{"file with CRLF", map[string]string{"HOOKED_API_KEY_FILE": crlfFile}, "s3cret-key", nil},
		{"variable alone", map[string]string{"HOOKED_API_KEY": "inline"}, "inline", nil},
		{"both set", map[string]string{"HOOKED_API_KEY": "inline", "HOOKED_API_KEY_FILE": keyFile}, "", []string{"HOOKED_API_KEY and HOOKED_API_KEY_FILE", "only one"}},
		{"missing file", map[string]string{"HOOKED_API_KEY_FILE": filepath.Join(t.TempDir(), "nope")}, "", []string{"HOOKED_API_KEY_FILE", "nope"}},
		{"oversized file", map[string]string{"HOOKED_API_KEY_FILE": bigFile}, "", []string{"HOOKED_API_KEY_FILE", "64 KiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := LoadWorker(nil, envOf(env), io.Discard)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := provider(t, c, tasks.ProviderHooked).APIKey; got != tt.wantKey {
					t.Errorf("API key %q, want %q", got, tt.wantKey)
				}
				return
			}
			var usage *UsageError
			if !errors.As(err, &usage) {
				t.Fatalf("err = %v, want a UsageError (exit 2)", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "inline") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

// Every secret the worker reads accepts *_FILE, and so does the
// producer's REDIS_URL.
func TestEverySecretAcceptsFile(t *testing.T) {
	dir := t.TempDir()
	for _, s := range Settings {
		if !s.Secret {
			continue
		}
		p := filepath.Join(dir, s.Name)
		value := "redis://from-file:6379"
		if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"REDIS_URL": "redis://127.0.0.1:6379", "MONITOR_USER": "u", "MONITOR_PASSWORD": "p"}
		if s.Name == "REDIS_SENTINEL_PASSWORD" {
			env["REDIS_URL"] = "redis-sentinel://127.0.0.1:26379?master=mymaster" // refused with any other scheme
		}
		delete(env, s.Name)
		env[s.Name+"_FILE"] = p
		r := &reader{getenv: envOf(env)}
		if got, src := r.raw(s.Name); got != value || src != s.Name+"_FILE" {
			t.Errorf("%s_FILE: read %q from %s, want %q", s.Name, got, src, value)
		}
		if _, err := LoadWorker(nil, envOf(env), io.Discard); err != nil {
			t.Errorf("%s_FILE: %v", s.Name, err)
		}
	}
	p, err := LoadProducer(envOf(map[string]string{"REDIS_URL_FILE": filepath.Join(dir, "REDIS_URL")}))
	if err != nil || p.RedisURL != "redis://from-file:6379" {
		t.Errorf("producer REDIS_URL_FILE: %+v, %v", p, err)
	}
	_, err = LoadProducer(envOf(map[string]string{"REDIS_URL": "redis://x:6379", "REDIS_URL_FILE": filepath.Join(dir, "REDIS_URL")}))
	if err == nil || !strings.Contains(err.Error(), "only one") {
		t.Errorf("producer with both REDIS_URL and REDIS_URL_FILE: %v, want an error", err)
	}
}

func TestFlagsOverrideTheirVariables(t *testing.T) {
	env := envOf(map[string]string{"REDIS_URL": "redis://127.0.0.1:6379", "HTTP_ADDR": "127.0.0.1:1", "WORKER_CONCURRENCY": "3", "LOG_FORMAT": "text"})
	c, err := LoadWorker([]string{"-http-addr", "127.0.0.1:2", "-concurrency", "7", "-log-format", "json"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:2" || c.Concurrency != 7 || c.LogFormat != "json" || c.HTTPAddrDefault {
		t.Errorf("flags did not override: addr %s concurrency %d format %s default %v", c.HTTPAddr, c.Concurrency, c.LogFormat, c.HTTPAddrDefault)
	}
	_, err = LoadWorker([]string{"-concurrency", "0"}, env, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-concurrency") {
		t.Errorf("-concurrency 0: %v, want an error naming the flag", err)
	}
}
