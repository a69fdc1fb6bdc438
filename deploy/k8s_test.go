package deploy

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/internal/testenv"
)

// k8sObject is what the checks read of a rendered manifest.
type k8sObject struct {
	Kind     string
	Metadata struct {
		Name   string
		Labels map[string]string
	}
	Spec struct {
		Replicas       *int
		MaxUnavailable any              `yaml:"maxUnavailable"`
		ClusterIP      string           `yaml:"clusterIP"`
		Selector       map[string]any   `yaml:"selector"`
		JobLabel       string           `yaml:"jobLabel"`
		Endpoints      []map[string]any `yaml:"endpoints"`
		Template       struct {
			Metadata struct{ Labels map[string]string }
			Spec     podSpec
		}
	}
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name  string
		Image string
		Args  []string
		Env   []struct {
			Name      string
			Value     *string
			ValueFrom *struct {
				SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		}
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string
		}
		SecurityContext struct {
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
	}
}

type probe struct {
	HTTPGet *struct{ Path string } `yaml:"httpGet"`
}

// render runs kubectl kustomize on dir and decodes every object.
func render(t *testing.T, dir string) []k8sObject {
	t.Helper()
	kubectl := testenv.Program(t, "kubectl", "kubectl is needed to render deploy/k8s (.ci/run installs it); the manifests were NOT checked")
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
	}
	var objs []k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decode rendered manifests: %v", err)
		}
		objs = append(objs, o)
	}
	return objs
}

func find(objs []k8sObject, kind, name string) *k8sObject {
	for i := range objs {
		if objs[i].Kind == kind && objs[i].Metadata.Name == name {
			return &objs[i]
		}
	}
	return nil
}

func TestKubernetesManifests(t *testing.T) {
	objs := render(t, "k8s")
	worker := find(objs, "Deployment", "refreshq-worker")
	monitor := find(objs, "Deployment", "refreshq-monitor")
	if worker == nil || monitor == nil {
		t.Fatalf("rendered objects lack the worker or monitor Deployment: %+v", objs)
	}

	t.Run("workers", func(t *testing.T) {
		if r := worker.Spec.Replicas; r == nil || *r != 3 {
			t.Errorf("worker replicas %v, want 3", deref(r))
		}
		spec := worker.Spec.Template.Spec
		c := spec.Containers[0]
		grace := config.DefaultShutdownGrace
		for _, e := range c.Env {
			if e.Name == "SHUTDOWN_GRACE" && e.Value != nil {
				d, err := time.ParseDuration(*e.Value)
				if err != nil {
					t.Fatalf("SHUTDOWN_GRACE %q: %v", *e.Value, err)
				}
				grace = d
			}
		}
		if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= grace {
			t.Errorf("terminationGracePeriodSeconds %v is not above SHUTDOWN_GRACE %s: tasks would be killed while finishing", deref(g), grace)
		}
		if v := envValue(c.Env, "QUEUE_METRICS"); v != "off" {
			t.Errorf("workers QUEUE_METRICS = %q, want off (the monitor reports the queues once)", v)
		}
	})
	for _, d := range []*k8sObject{worker, monitor} {
		t.Run(d.Metadata.Name+" probes, resources, security", func(t *testing.T) {
			spec := d.Spec.Template.Spec
			if len(spec.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(spec.Containers))
			}
			c := spec.Containers[0]
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("liveness probe %+v, want GET /healthz", c.LivenessProbe)
			}
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("readiness probe %+v, want GET /readyz", c.ReadinessProbe)
			}
			if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
				t.Errorf("resource requests %v, want cpu and memory", c.Resources.Requests)
			}
			if ro := c.SecurityContext.ReadOnlyRootFilesystem; ro == nil || !*ro {
				t.Error("root filesystem is not read-only")
			}
			if ape := c.SecurityContext.AllowPrivilegeEscalation; ape == nil || *ape {
				t.Error("privilege escalation is allowed")
			}
			if nr := spec.SecurityContext.RunAsNonRoot; nr == nil || !*nr || spec.SecurityContext.RunAsUser == nil || *spec.SecurityContext.RunAsUser == 0 {
				t.Error("the pod may run as root")
			}
			for _, e := range c.Env {
				s, ok := lookup(e.Name)
				if !ok {
					t.Errorf("env %s is not a variable the worker reads", e.Name)
				}
				if s.Secret && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
					t.Errorf("secret %s is not read from a Secret", e.Name)
				}
			}
		})
	}
	if !slices.Contains(monitor.Spec.Template.Spec.Containers[0].Args, "-monitor-only") {
		t.Errorf("monitor args %v lack -monitor-only", monitor.Spec.Template.Spec.Containers[0].Args)
	}
	if s := find(objs, "Service", "refreshq-monitor"); s == nil || s.Spec.Selector["app.kubernetes.io/component"] != "monitor" {
		t.Errorf("no Service selecting the monitor: %+v", s)
	}
	if s := find(objs, "Service", "refreshq-worker"); s == nil || s.Spec.ClusterIP != "None" || s.Metadata.Labels["refreshq/job"] != "refreshq-workers" {
		t.Errorf("no headless worker Service labelled with the alerts' job name: %+v", s)
	}
	pdb := find(objs, "PodDisruptionBudget", "refreshq-worker")
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget for the workers")
	}
	if sel, _ := pdb.Spec.Selector["matchLabels"].(map[string]any); sel["app.kubernetes.io/component"] != "worker" {
		t.Errorf("PodDisruptionBudget selects %v, want the workers", pdb.Spec.Selector)
	}
	if find(objs, "ServiceMonitor", "refreshq") != nil {
		t.Error("the default render has a ServiceMonitor: it is optional (with-servicemonitor)")
	}

	sm := find(render(t, "k8s/with-servicemonitor"), "ServiceMonitor", "refreshq")
	if sm == nil {
		t.Fatal("with-servicemonitor renders no ServiceMonitor")
	}
	if sm.Spec.JobLabel != "refreshq/job" || len(sm.Spec.Endpoints) == 0 || sm.Spec.Endpoints[0]["path"] != "/metrics" {
		t.Errorf("ServiceMonitor %+v, want /metrics with the refreshq/job label as job", sm.Spec)
	}
}

func envValue(env []struct {
	Name      string
	Value     *string
	ValueFrom *struct {
		SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}, name string) string {
	for _, e := range env {
		if e.Name == name && e.Value != nil {
			return *e.Value
		}
	}
	return ""
}

func lookup(name string) (config.Setting, bool) {
	for _, s := range config.Settings {
		if s.Name == name || (s.Secret && strings.TrimSuffix(name, "_FILE") == s.Name) {
			return s, true
		}
	}
	return config.Setting{}, false
}

func deref(p *int) any {
	if p == nil {
		return "unset"
	}
	return *p
}
