package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/internal/schedule"
	"github.com/refreshq/refreshq/internal/testenv"
)

// knownEnv reports whether the worker reads name (config.Settings, or a
// secret's _FILE form). The compose file may use no other: a variable the
// worker does not read is a setting an operator believes in that does
// nothing.
func knownEnv(name string) bool {
	for _, s := range config.Settings {
		if s.Name == name || (s.Secret && s.Name+"_FILE" == name) {
			return true
		}
	}
	return false
}

// secretEnv may only come from the host, never be written in the file.
func secretEnv(name string) bool {
	for _, s := range config.Settings {
		if s.Secret && s.Name == name {
			return name != "REDIS_URL" // compose's own Redis has no password
		}
	}
	return false
}

type service struct {
	Build       any                `yaml:"build"`
	Image       string             `yaml:"image"`
	Command     []string           `yaml:"command"`
	Environment map[string]*string `yaml:"environment"`
	Ports       []any              `yaml:"ports"`
	Volumes     []string           `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Deploy struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
	Healthcheck     *struct{ Test []string } `yaml:"healthcheck"`
	Profiles        []string                 `yaml:"profiles"`
	StopGracePeriod string                   `yaml:"stop_grace_period"`
}

type compose struct {
	Services map[string]service `yaml:"services"`
}

func loadCompose(t *testing.T) (compose, string) {
	t.Helper()
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c, string(raw)
}

func (s service) env(name string) (string, bool) {
	v, ok := s.Environment[name]
	if !ok || v == nil {
		return "", ok
	}
	return *v, true
}

func TestComposeServices(t *testing.T) {
	c, _ := loadCompose(t)
	for _, name := range []string{"redis", "worker", "monitor"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("service %s is missing", name)
		}
	}
	redis, worker, monitor := c.Services["redis"], c.Services["worker"], c.Services["monitor"]

	t.Run("redis persists, never evicts, and says when it is ready", func(t *testing.T) {
		if !strings.HasPrefix(redis.Image, "redis:7") {
			t.Errorf("redis image %q, want redis:7-alpine", redis.Image)
		}
		cmd := strings.Join(redis.Command, " ")
		for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("redis command %q lacks %q", cmd, want)
			}
		}
		if redis.Healthcheck == nil || len(redis.Healthcheck.Test) == 0 {
			t.Error("redis has no healthcheck: depends_on service_healthy would never pass")
		}
	})

	t.Run("refreshq containers check their own health", func(t *testing.T) {
		for _, name := range []string{"worker", "monitor"} {
			svc := c.Services[name]
			if svc.Healthcheck == nil || !strings.Contains(strings.Join(svc.Healthcheck.Test, " "), "worker -healthcheck") {
				t.Errorf("%s has no `worker -healthcheck` healthcheck (distroless has no curl)", name)
			}
		}
	})

	t.Run("worker replicas", func(t *testing.T) {
		if r := worker.Deploy.Replicas; r == nil || *r != 3 {
			got := "unset"
			if r != nil {
				got = strconv.Itoa(*r)
			}
			t.Errorf("worker deploy.replicas = %s, want 3", got)
		}
		if len(worker.Ports) > 0 {
			t.Errorf("worker publishes %v: replicas cannot share a host port", worker.Ports)
		}
		if worker.Build != "." {
			t.Errorf("worker build = %v, want .", worker.Build)
		}
		for _, s := range []string{"worker", "monitor"} {
			if c.Services[s].DependsOn["redis"].Condition != "service_healthy" {
				t.Errorf("%s does not wait for redis to be healthy", s)
			}
			if v, _ := c.Services[s].env("HTTP_ADDR"); v != "0.0.0.0:8080" {
				t.Errorf("%s HTTP_ADDR = %q, want 0.0.0.0:8080 (reachable from outside the container)", s, v)
			}
			if v, _ := c.Services[s].env("REDIS_URL"); v != "redis://redis:6379" {
				t.Errorf("%s REDIS_URL = %q, want redis://redis:6379", s, v)
			}
		}
	})

	t.Run("one published port, the monitor's, on loopback", func(t *testing.T) {
		var publishers []string
		for name, s := range c.Services {
			if len(s.Ports) > 0 && len(s.Profiles) == 0 {
				publishers = append(publishers, name)
			}
		}
		slices.Sort(publishers)
		if !slices.Equal(publishers, []string{"monitor"}) {
			t.Fatalf("services of the default profile publishing ports: %v, want only monitor", publishers)
		}
		if len(monitor.Ports) != 1 {
			t.Fatalf("monitor publishes %v, want one port", monitor.Ports)
		}
		if p, _ := monitor.Ports[0].(string); !strings.HasPrefix(p, "127.0.0.1:") || !strings.HasSuffix(p, ":8080") {
			t.Errorf("monitor port %v, want 127.0.0.1:HOST:8080", monitor.Ports[0])
		}
		if !slices.Contains(monitor.Command, "-monitor-only") {
			t.Errorf("monitor command %v lacks -monitor-only: it would run tasks too", monitor.Command)
		}
		if v, _ := monitor.env("MONITOR_PASSWORD"); !strings.HasPrefix(v, "${MONITOR_PASSWORD:?") {
			t.Errorf("MONITOR_PASSWORD = %q; want ${MONITOR_PASSWORD:?...} so compose refuses to start without one", v)
		}
		for _, k := range []string{"BUNDLE_SOCIAL_API_KEY", "HOOKED_API_KEY"} {
			if _, ok := monitor.Environment[k]; ok {
				t.Errorf("the published monitor holds %s; it runs no tasks and needs no upstream keys", k)
			}
		}
	})

	t.Run("stop grace outlasts the shutdown grace", func(t *testing.T) {
		grace := config.DefaultShutdownGrace
		if v, ok := worker.env("SHUTDOWN_GRACE"); ok && v != "" {
			var err error
			if grace, err = time.ParseDuration(v); err != nil {
				t.Fatalf("SHUTDOWN_GRACE %q: %v", v, err)
			}
		}
		stop := 10 * time.Second // Docker's default
		if worker.StopGracePeriod != "" {
			var err error
			if stop, err = time.ParseDuration(worker.StopGracePeriod); err != nil {
				t.Fatalf("stop_grace_period %q: %v", worker.StopGracePeriod, err)
			}
		}
		if stop <= grace {
			t.Errorf("stop_grace_period %v <= SHUTDOWN_GRACE %v: Docker would SIGKILL tasks still finishing", stop, grace)
		}
	})

	t.Run("the mounted schedule is valid", func(t *testing.T) {
		file, ok := worker.env("SCHEDULE_FILE")
		if !ok || file == "" {
			t.Skip("no SCHEDULE_FILE")
		}
		for _, v := range worker.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || !strings.HasPrefix(file, parts[1]+"/") {
				continue
			}
			host := path.Join("..", parts[0], strings.TrimPrefix(file, parts[1]+"/"))
			if _, err := schedule.Load(host); err != nil {
				t.Errorf("workers would refuse to start: %v", err)
			}
			return
		}
		t.Errorf("SCHEDULE_FILE %s is not under any mounted volume %v", file, worker.Volumes)
	})
}

var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

func TestComposeEnvNames(t *testing.T) {
	c, raw := loadCompose(t)
	for name, s := range c.Services {
		if s.Build == nil { // not a refreshq container (Redis, Prometheus, Grafana)
			continue
		}
		for k, v := range s.Environment {
			if !knownEnv(k) {
				t.Errorf("service %s sets %s, which the worker does not read (config.Settings)", name, k)
			}
			if secretEnv(k) && v != nil {
				ok := regexp.MustCompile(`^\$\{` + k + `(:-|:\?[^}]*)?\}$`).MatchString(*v)
				if !ok {
					t.Errorf("service %s: %s = %q; a secret must come from the host as ${%s:-} or ${%s:?...}", name, k, *v, k, k)
				}
			}
		}
	}
	// Host variables read anywhere in the file are the worker's names too.
	for _, m := range interpolation.FindAllStringSubmatch(raw, -1) {
		if !knownEnv(m[1]) {
			t.Errorf("docker-compose.yml reads ${%s} from the host, which the worker does not read (config.Settings)", m[1])
		}
	}
}

// instruction is one Dockerfile instruction with continuations joined.
type instruction struct{ cmd, args string }

func loadDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out  []instruction
		cur  strings.Builder
		scan = bufio.NewScanner(f)
	)
	for scan.Scan() {
		line := strings.TrimSpace(scan.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		cont := strings.HasSuffix(line, "\\")
		cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
		if cont {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := loadDockerfile(t)
	var froms []string
	var build, env, user, entry, health string
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args)
		case "RUN":
			if strings.Contains(in.args, "go build") {
				build = in.args
			}
		case "ENV":
			env += in.args + " "
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "HEALTHCHECK":
			health = in.args
		}
	}
	if len(froms) < 2 {
		t.Fatalf("FROM %v: want a multi-stage build", froms)
	}
	if !regexp.MustCompile(`(^| )golang:1\.26( |$)`).MatchString(froms[0]) || !strings.Contains(froms[0], " AS ") {
		t.Errorf("first stage %q, want golang:1.26 AS build", froms[0])
	}
	final := froms[len(froms)-1]
	if final != "gcr.io/distroless/static-debian12:nonroot" && final != "scratch" {
		t.Errorf("final stage %q, want distroless static (nonroot)", final)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/worker", "./cmd/enqueue"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build step %q lacks %s", build, want)
		}
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	if !strings.Contains(health, `CMD ["/usr/local/bin/worker", "-healthcheck"]`) {
		t.Errorf("HEALTHCHECK %q, want CMD [\"/usr/local/bin/worker\", \"-healthcheck\"] (the image has no curl)", health)
	}
	if !strings.Contains(build, "buildinfo.version=${VERSION}") {
		t.Errorf("go build step %q does not stamp the version: worker -version would say devel", build)
	}
	if !strings.Contains(entry, "worker") {
		t.Errorf("ENTRYPOINT %q, want the worker", entry)
	}
	if !strings.Contains(env, "HTTP_ADDR=0.0.0.0:8080") {
		t.Errorf("ENV %q lacks HTTP_ADDR=0.0.0.0:8080: a loopback default is unreachable from outside the container", env)
	}
}

func TestDockerignore(t *testing.T) {
	raw, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	for _, want := range []string{".git", ".env"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore lacks %s: it would be copied into the build context", want)
		}
	}
}

// .env.example names only variables the worker reads, and holds no secret.
func TestEnvExample(t *testing.T) {
	raw, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf(".env.example: %q is not NAME=value", line)
			continue
		}
		names = append(names, name)
		if !knownEnv(name) {
			t.Errorf(".env.example sets %s, which the worker does not read (config.Settings)", name)
		}
		if secretEnv(name) && value != "" {
			t.Errorf(".env.example gives the secret %s a value", name)
		}
	}
	for _, want := range []string{"MONITOR_PASSWORD", "BUNDLE_SOCIAL_API_KEY", "HOOKED_API_KEY"} {
		if !slices.Contains(names, want) {
			t.Errorf(".env.example lacks %s, which compose needs", want)
		}
	}
}

// --profile monitoring adds Prometheus and Grafana, with the shipped
// configuration mounted, published on loopback only; without the profile
// nothing changes.
func TestComposeMonitoringProfile(t *testing.T) {
	c, _ := loadCompose(t)
	for name, s := range c.Services {
		switch name {
		case "redis", "worker", "monitor":
			if len(s.Profiles) != 0 {
				t.Errorf("%s has profiles %v: the default profile must keep it", name, s.Profiles)
			}
		default:
			if !slices.Equal(s.Profiles, []string{"monitoring"}) {
				t.Errorf("%s has profiles %v, want [monitoring]", name, s.Profiles)
			}
		}
	}
	for _, name := range []string{"prometheus", "grafana"} {
		s, ok := c.Services[name]
		if !ok {
			t.Fatalf("the monitoring profile lacks %s", name)
		}
		for _, p := range s.Ports {
			if ps, _ := p.(string); !strings.HasPrefix(ps, "127.0.0.1:") {
				t.Errorf("%s publishes %v beyond loopback", name, p)
			}
		}
		for _, v := range s.Volumes {
			host, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(host, "./") {
				if _, err := os.Stat(path.Join("..", host)); err != nil {
					t.Errorf("%s mounts %s, which does not exist: %v", name, host, err)
				}
			}
		}
	}
	if !slices.Contains(c.Services["prometheus"].Volumes, "./deploy/prometheus:/etc/prometheus:ro") {
		t.Errorf("prometheus does not mount deploy/prometheus (config and alerts): %v", c.Services["prometheus"].Volumes)
	}
	if !slices.Contains(c.Services["grafana"].Volumes, "./deploy/grafana/refreshq.json:/var/lib/grafana/dashboards/refreshq.json:ro") {
		t.Errorf("grafana does not mount the dashboard where its provisioning looks: %v", c.Services["grafana"].Volumes)
	}
	if v, _ := c.Services["worker"].env("QUEUE_METRICS"); v != "off" {
		t.Errorf("workers QUEUE_METRICS = %q, want off: N replicas would report N copies of the queue gauges", v)
	}
	if v, _ := c.Services["monitor"].env("QUEUE_METRICS"); v != "on" {
		t.Errorf("monitor QUEUE_METRICS = %q, want on: one process reports the queue gauges", v)
	}
}

// Debian's docker-compose validates the file (no engine needed), with and
// without the monitoring profile.
func TestComposeConfigValidates(t *testing.T) {
	dc := testenv.Program(t, "docker-compose", "apt-get install -y docker-compose (.ci/run installs it); docker-compose.yml was NOT validated")
	for _, args := range [][]string{{"config", "-q"}, {"--profile", "monitoring", "config", "-q"}} {
		cmd := exec.Command(dc, args...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "MONITOR_PASSWORD=compose-test")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker-compose %v: %v\n%s", args, err, out)
		}
	}
}
