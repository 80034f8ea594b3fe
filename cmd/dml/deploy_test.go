package main

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// The deployment files (deploy/) start dml with commands, flags and DML_
// variables, and probe routes, that must exist in this build: these
// tests hold them to the real command tree and a real server.

const (
	chartDir    = "../../deploy/helm/dml"
	composeFile = "../../deploy/compose.yaml"
)

// serveEnvOnly are the variables dml serve reads that are no flag, so
// that the secrets they hold stay off the command line. Each is named in
// serve's help.
var serveEnvOnly = []string{"DML_S3_ACCESS_KEY", "DML_S3_SECRET_KEY", "DML_BOOTSTRAP_TOKEN"}

// secretEnv are the variables whose values are secrets: a deployment
// file must take them from a Secret (chart) or the operator's .env
// (compose), never hold them.
var secretEnv = []string{"DML_DATABASE", "DML_S3_ACCESS_KEY", "DML_S3_SECRET_KEY", "DML_BOOTSTRAP_TOKEN"}

// findCommand resolves args (a dml command line without the program)
// in a fresh command tree and parses its flags, as dml would. missing is
// what does not exist ("healthcheck", "serve --tls-cert"); err is any
// other reason the line would not run.
func findCommand(args []string) (cmd *cobra.Command, missing string, err error) {
	root := newRootCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return nil, "", err
	}
	if cmd == root {
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			return nil, args[0], nil
		}
		return nil, "", errors.New("no subcommand")
	}
	if err := cmd.ParseFlags(rest); err != nil {
		var nf *pflag.NotExistError
		if errors.As(err, &nf) {
			return cmd, cmd.Name() + " --" + strings.TrimLeft(nf.GetSpecifiedName(), "-"), nil
		}
		return cmd, "", err
	}
	if cmd.Args != nil {
		if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
			return cmd, "", err
		}
	}
	return cmd, "", nil
}

// checkCommand fails t unless args is a dml command line that runs.
func checkCommand(t *testing.T, where string, args []string) *cobra.Command {
	t.Helper()
	cmd, missing, err := findCommand(args)
	switch {
	case err != nil:
		t.Errorf("%s: dml %s: %v", where, strings.Join(args, " "), err)
	case missing != "":
		t.Errorf("%s: dml %s: %q does not exist", where, strings.Join(args, " "), missing)
	}
	return cmd
}

// envFlag is the flag of serve that the environment variable name sets
// (DML_<FLAG>, only for the flags marked settable from the environment).
func envFlag(serve *cobra.Command, name string) *pflag.Flag {
	var found *pflag.Flag
	serve.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Annotations[envAnnotation] != nil && "DML_"+strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")) == name {
			found = f
		}
	})
	return found
}

// checkServeEnv fails t unless dml serve reads the variable name and,
// for a flag, takes value (when not nil) as it would from DML_<FLAG>.
func checkServeEnv(t *testing.T, where, name string, value *string) {
	t.Helper()
	serve := newServeCmd()
	if slices.Contains(serveEnvOnly, name) {
		if !strings.Contains(serve.Long, name) {
			t.Errorf("%s: %s is in serveEnvOnly but dml serve's help does not name it", where, name)
		}
		return
	}
	if f := envFlag(serve, name); f != nil {
		if value != nil {
			if err := f.Value.Set(*value); err != nil {
				t.Errorf("%s: %s=%q: dml serve would refuse it: %v", where, name, *value, err)
			}
		}
		return
	}
	t.Errorf("%s: %s is no flag of dml serve settable from the environment, nor a variable it reads", where, name)
}

// helmBinary is helm from PATH or $(go env GOPATH)/bin, where
// scripts/test.sh installs it. Missing, the chart tests skip, except in
// CI, where that is a failure.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "helm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("helm is not on PATH nor in GOPATH/bin; ./scripts/test.sh installs it (go install helm.sh/helm/v3/cmd/helm@v3.22.0)")
	}
	t.Skip("helm is not on PATH nor in GOPATH/bin (./scripts/test.sh installs it)")
	return ""
}

// The parts of the rendered objects the tests read.
type (
	k8sObject struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	secretRef struct {
		Name string `json:"name"`
		Key  string `json:"key"`
	}
	envVar struct {
		Name      string  `json:"name"`
		Value     *string `json:"value"`
		ValueFrom *struct {
			SecretKeyRef    *secretRef `json:"secretKeyRef"`
			ConfigMapKeyRef *secretRef `json:"configMapKeyRef"`
		} `json:"valueFrom"`
	}
	probe struct {
		HTTPGet *struct {
			Path   string `json:"path"`
			Port   any    `json:"port"`
			Scheme string `json:"scheme"`
		} `json:"httpGet"`
		Exec *struct {
			Command []string `json:"command"`
		} `json:"exec"`
	}
	securityContext struct {
		RunAsNonRoot             *bool  `json:"runAsNonRoot"`
		RunAsUser                *int64 `json:"runAsUser"`
		ReadOnlyRootFilesystem   *bool  `json:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool  `json:"allowPrivilegeEscalation"`
	}
	container struct {
		Name    string   `json:"name"`
		Command []string `json:"command"`
		Args    []string `json:"args"`
		Env     []envVar `json:"env"`
		Ports   []struct {
			Name          string `json:"name"`
			ContainerPort int    `json:"containerPort"`
		} `json:"ports"`
		LivenessProbe   *probe          `json:"livenessProbe"`
		ReadinessProbe  *probe          `json:"readinessProbe"`
		SecurityContext securityContext `json:"securityContext"`
		Resources       struct {
			Requests map[string]string `json:"requests"`
			Limits   map[string]string `json:"limits"`
		} `json:"resources"`
		VolumeMounts []struct {
			Name      string `json:"name"`
			MountPath string `json:"mountPath"`
		} `json:"volumeMounts"`
	}
	deployment struct {
		k8sObject
		Spec struct {
			Replicas int `json:"replicas"`
			Template struct {
				Spec struct {
					SecurityContext securityContext `json:"securityContext"`
					Containers      []container     `json:"containers"`
					Volumes         []struct {
						Name                  string         `json:"name"`
						EmptyDir              map[string]any `json:"emptyDir"`
						PersistentVolumeClaim *struct {
							ClaimName string `json:"claimName"`
						} `json:"persistentVolumeClaim"`
						Secret *struct {
							SecretName string `json:"secretName"`
						} `json:"secret"`
					} `json:"volumes"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	service struct {
		k8sObject
		Spec struct {
			Ports []struct {
				Name       string `json:"name"`
				TargetPort any    `json:"targetPort"`
			} `json:"ports"`
		} `json:"spec"`
	}
	serviceMonitor struct {
		k8sObject
		Spec struct {
			Endpoints []struct {
				Port   string `json:"port"`
				Path   string `json:"path"`
				Scheme string `json:"scheme"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	podDisruptionBudget struct {
		k8sObject
		Spec struct {
			MaxUnavailable int `json:"maxUnavailable"`
			Selector       struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
		} `json:"spec"`
	}
	ingress struct {
		k8sObject
		Spec struct {
			TLS []struct {
				Hosts      []string `json:"hosts"`
				SecretName string   `json:"secretName"`
			} `json:"tls"`
			Rules []struct {
				Host string `json:"host"`
			} `json:"rules"`
		} `json:"spec"`
	}
)

// rendered is what helm template made, each document kept as YAML.
type rendered struct {
	docs [][]byte
}

// helmTemplate renders the chart with args (-f, --set) added; stderr is
// returned with the error when helm refuses.
func helmTemplate(t *testing.T, helm string, args ...string) (rendered, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helm, append([]string{"template", "dml", chartDir}, args...)...)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return rendered{}, errors.New(err.Error() + ": " + stderr.String())
	}
	var r rendered
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(stdout.String(), -1) {
		var o k8sObject
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("helm template printed a document that is no YAML: %v\n%s", err, doc)
		}
		if o.Kind != "" {
			r.docs = append(r.docs, []byte(doc))
		}
	}
	return r, nil
}

// of decodes every rendered object of kind into a new T.
func of[T any](t *testing.T, r rendered, kind string) []T {
	t.Helper()
	var out []T
	for _, doc := range r.docs {
		var o k8sObject
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatal(err)
		}
		if o.Kind != kind {
			continue
		}
		var v T
		if err := yaml.Unmarshal(doc, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// chartCase is one set of chart values and what it must render.
type chartCase struct {
	name string
	args []string
	// replicas, and whether /data is an emptyDir (everything shared lives
	// in PostgreSQL, S3 and the keys Secret) rather than a claim.
	replicas  int
	stateless bool
	tls       bool
	// ingress and serviceMonitor: rendered or not.
	ingress, serviceMonitor bool
}

// TestHelmChart renders deploy/helm/dml with its defaults, the shared
// DML of ci/ha-values.yaml, and TLS to the pod, and holds each to what
// dml serves and reads: the probes and the ServiceMonitor get 200 from a
// real server, every DML_ variable is one dml serve reads, every secret
// comes from a Secret, and the pod runs as 65532 on a read-only root.
func TestHelmChart(t *testing.T) {
	helm := helmBinary(t)
	srv := startServer(t, nil, "--data-dir", t.TempDir())
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get(srv.url() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	for _, c := range []chartCase{
		{name: "defaults", replicas: 1},
		{name: "shared", args: []string{"-f", chartDir + "/ci/ha-values.yaml"}, replicas: 2, stateless: true, ingress: true, serviceMonitor: true},
		{name: "pod-tls", args: []string{"--set", "tls.existingSecret=dml-pod-tls", "--set", "serviceMonitor.enabled=true"}, replicas: 1, tls: true, serviceMonitor: true},
		// S3 blobs but SQLite metadata: /data must persist.
		{name: "s3-sqlite", args: []string{"--set", "s3.endpoint=s3.example:443", "--set", "s3.existingSecret=dml-s3"}, replicas: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := helmTemplate(t, helm, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			for _, kind := range []string{"Secret", "ConfigMap"} {
				if n := len(of[k8sObject](t, r, kind)); n != 0 {
					t.Errorf("the chart renders %d %s(s): every secret is a Secret the operator made, named in values", n, kind)
				}
			}
			deps := of[deployment](t, r, "Deployment")
			if len(deps) != 1 {
				t.Fatalf("%d Deployments rendered, want 1", len(deps))
			}
			d := deps[0]
			if d.Spec.Replicas != c.replicas {
				t.Errorf("replicas %d, want %d", d.Spec.Replicas, c.replicas)
			}
			pod := d.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			ct := pod.Containers[0]
			if len(ct.Command) != 1 || filepath.Base(ct.Command[0]) != "dml" {
				t.Errorf("command %q, want the dml binary", ct.Command)
			}
			if cmd := checkCommand(t, "container args", ct.Args); cmd != nil && cmd.Name() != "serve" {
				t.Errorf("the container runs dml %s, want serve", cmd.Name())
			}

			// Every variable is one dml serve reads; secrets come from a
			// Secret, and no literal holds a URL with credentials.
			seen := map[string]envVar{}
			for _, e := range ct.Env {
				if _, dup := seen[e.Name]; dup {
					t.Errorf("%s is set twice", e.Name)
				}
				seen[e.Name] = e
				checkServeEnv(t, "Deployment env", e.Name, e.Value)
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					t.Errorf("%s comes from a ConfigMap", e.Name)
				}
				if e.Value != nil && regexp.MustCompile(`://[^/@\s]*:[^/@\s]*@`).MatchString(*e.Value) {
					t.Errorf("%s holds a URL with a password in a plain value: %s", e.Name, *e.Value)
				}
			}
			for _, name := range secretEnv {
				e, ok := seen[name]
				if !ok {
					continue
				}
				if e.Value != nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "" {
					t.Errorf("%s is not taken from a Secret (valueFrom.secretKeyRef): %+v", name, e)
				}
			}
			if c.stateless {
				for _, name := range []string{"DML_DATABASE", "DML_S3_ACCESS_KEY", "DML_S3_SECRET_KEY", "DML_SERVER_KEY", "DML_LOG_KEY"} {
					if _, ok := seen[name]; !ok {
						t.Errorf("%d replicas share metadata, blobs and keys, but %s is not set", c.replicas, name)
					}
				}
			}
			if _, ok := seen["DML_TLS_CERT"]; ok != c.tls {
				t.Errorf("DML_TLS_CERT set: %v, want %v", ok, c.tls)
			}

			// The probes ask routes the server answers 200, on the
			// container's port, in the scheme it serves.
			port := map[string]bool{}
			for _, p := range ct.Ports {
				port[p.Name] = true
			}
			wantScheme := "HTTP"
			if c.tls {
				wantScheme = "HTTPS"
			}
			for _, pr := range []struct {
				what string
				p    *probe
				path string
			}{{"liveness", ct.LivenessProbe, "/healthz"}, {"readiness", ct.ReadinessProbe, "/readyz"}} {
				if pr.p == nil || pr.p.HTTPGet == nil {
					t.Errorf("no %s HTTP probe", pr.what)
					continue
				}
				g := pr.p.HTTPGet
				if g.Path != pr.path {
					t.Errorf("%s probe asks %s, want %s", pr.what, g.Path, pr.path)
				}
				if status := get(g.Path); status != http.StatusOK {
					t.Errorf("%s probe: GET %s answers %d on a healthy server, want 200", pr.what, g.Path, status)
				}
				if name, ok := g.Port.(string); !ok || !port[name] {
					t.Errorf("%s probe port %v names no container port (%v)", pr.what, g.Port, port)
				}
				if g.Scheme != wantScheme {
					t.Errorf("%s probe scheme %q, want %q", pr.what, g.Scheme, wantScheme)
				}
			}

			// Non-root 65532 on a read-only root file system, with limits.
			for what, sc := range map[string]securityContext{"pod": pod.SecurityContext, "container": ct.SecurityContext} {
				if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
					t.Errorf("%s securityContext does not run as non-root 65532: %+v", what, sc)
				}
			}
			if sc := ct.SecurityContext; sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("container root file system not read-only or privilege escalation allowed: %+v", sc)
			}
			if ct.Resources.Requests["memory"] == "" || ct.Resources.Limits["memory"] == "" {
				t.Errorf("no memory request and limit: %+v", ct.Resources)
			}

			// /data: a claim unless nothing in it must outlive the pod.
			mounted := map[string]string{}
			for _, m := range ct.VolumeMounts {
				mounted[m.MountPath] = m.Name
			}
			var claims []string
			for _, pvc := range of[k8sObject](t, r, "PersistentVolumeClaim") {
				claims = append(claims, pvc.Metadata.Name)
			}
			for _, v := range pod.Volumes {
				if v.Name != mounted["/data"] {
					continue
				}
				switch {
				case c.stateless && v.EmptyDir == nil:
					t.Errorf("/data is %+v, want an emptyDir: metadata, blobs and keys live elsewhere", v)
				case !c.stateless && (v.PersistentVolumeClaim == nil || !slices.Contains(claims, v.PersistentVolumeClaim.ClaimName)):
					t.Errorf("/data is %+v, want the rendered claim (%v): it holds the database, keys or blobs", v, claims)
				}
			}
			if mounted["/data"] == "" {
				t.Error("nothing is mounted at /data")
			}

			// The ServiceMonitor scrapes /metrics through the Service's
			// port, which leads to the container's.
			svcs := of[service](t, r, "Service")
			if len(svcs) != 1 {
				t.Fatalf("%d Services rendered, want 1", len(svcs))
			}
			svcPort := map[string]bool{}
			for _, p := range svcs[0].Spec.Ports {
				svcPort[p.Name] = true
				if name, ok := p.TargetPort.(string); !ok || !port[name] {
					t.Errorf("Service port %s targets %v, no container port (%v)", p.Name, p.TargetPort, port)
				}
			}
			sms := of[serviceMonitor](t, r, "ServiceMonitor")
			if (len(sms) == 1) != c.serviceMonitor {
				t.Fatalf("%d ServiceMonitors rendered, want one: %v", len(sms), c.serviceMonitor)
			}
			for _, sm := range sms {
				if len(sm.Spec.Endpoints) == 0 {
					t.Error("the ServiceMonitor has no endpoint")
				}
				for _, e := range sm.Spec.Endpoints {
					if e.Path != "/metrics" || !svcPort[e.Port] || !strings.EqualFold(e.Scheme, wantScheme) {
						t.Errorf("ServiceMonitor endpoint %+v, want %s /metrics on a port of the Service (%v)", e, wantScheme, svcPort)
					}
					if status := get(e.Path); status != http.StatusOK {
						t.Errorf("GET %s answers %d, want 200", e.Path, status)
					}
				}
			}

			// More than one replica: a drain takes one at a time.
			pdbs := of[podDisruptionBudget](t, r, "PodDisruptionBudget")
			if (len(pdbs) == 1) != (c.replicas > 1) {
				t.Errorf("%d PodDisruptionBudgets for %d replicas", len(pdbs), c.replicas)
			}
			for _, p := range pdbs {
				if p.Spec.MaxUnavailable != 1 || len(p.Spec.Selector.MatchLabels) == 0 {
					t.Errorf("PodDisruptionBudget %+v, want maxUnavailable 1 over the pods", p.Spec)
				}
			}

			// The ingress serves TLS for every host it routes.
			ings := of[ingress](t, r, "Ingress")
			if (len(ings) == 1) != c.ingress {
				t.Fatalf("%d Ingresses rendered, want one: %v", len(ings), c.ingress)
			}
			for _, ing := range ings {
				if len(ing.Spec.Rules) == 0 {
					t.Error("the ingress has no rule")
				}
				for _, rule := range ing.Spec.Rules {
					covered := false
					for _, tls := range ing.Spec.TLS {
						covered = covered || (tls.SecretName != "" && slices.Contains(tls.Hosts, rule.Host))
					}
					if !covered {
						t.Errorf("ingress host %q has no TLS certificate (%+v)", rule.Host, ing.Spec.TLS)
					}
				}
			}
		})
	}
}

// TestHelmChartRefuses: settings that cannot work fail the render with
// a message that says what to set.
func TestHelmChartRefuses(t *testing.T) {
	helm := helmBinary(t)
	pg := []string{"--set", "database.existingSecret=dml-database"}
	s3 := []string{"--set", "s3.endpoint=minio:9000", "--set", "s3.existingSecret=dml-s3"}
	keys := []string{"--set", "keys.existingSecret=dml-keys"}
	two := []string{"--set", "replicaCount=2"}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"replicas without PostgreSQL", slices.Concat(two, s3, keys), "needs PostgreSQL"},
		{"replicas without S3", slices.Concat(two, pg, keys), "needs S3"},
		{"replicas without shared keys", slices.Concat(two, pg, s3), "keys.existingSecret"},
		{"S3 without credentials", []string{"--set", "s3.endpoint=minio:9000"}, "s3.existingSecret"},
		{"ingress without TLS", []string{"--set", "ingress.enabled=true", "--set", "ingress.tlsSecretName="}, "TLS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := helmTemplate(t, helm, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("helm template %s: %v, want a refusal saying %q", strings.Join(c.args, " "), err, c.want)
			}
		})
	}
	// The same settings with everything shared render.
	if _, err := helmTemplate(t, helm, slices.Concat(two, pg, s3, keys)...); err != nil {
		t.Fatalf("two replicas over PostgreSQL, S3 and shared keys: %v", err)
	}
}

// TestHelmValuesHoldNoSecret: values.yaml (and the example values)
// only name Secrets and their keys. A setting about a secret is
// existingSecret, ...SecretName or ...Key (a key of the Secret), and its
// value is a Kubernetes name, never a credential or a URL.
func TestHelmValuesHoldNoSecret(t *testing.T) {
	secretish := regexp.MustCompile(`(?i)secret|password|passwd|token|credential|dsn|accesskey|url`)
	namesASecret := regexp.MustCompile(`(existingSecret|SecretName|Key)$`)
	k8sName := regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	for _, file := range []string{chartDir + "/values.yaml", chartDir + "/ci/ha-values.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var values map[string]any
		if err := yaml.Unmarshal(data, &values); err != nil {
			t.Fatal(err)
		}
		n := 0
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, sub := range v {
					walk(path+"."+k, sub)
				}
			case []any:
				for _, sub := range v {
					walk(path+"[]", sub)
				}
			default:
				key := path[strings.LastIndex(path, ".")+1:]
				if !secretish.MatchString(key) {
					return
				}
				n++
				s, _ := v.(string)
				if !namesASecret.MatchString(key) || (s != "" && !k8sName.MatchString(s)) {
					t.Errorf("%s: %s = %v: a secret setting must name a Secret or its key", file, path, v)
				}
			}
		}
		walk("", values)
		if n == 0 {
			t.Errorf("%s: no setting names a Secret", file)
		}
	}
}

// composeService is the part of a compose service the test reads.
type composeService struct {
	Image       string            `json:"image"`
	Build       any               `json:"build"`
	Entrypoint  []string          `json:"entrypoint"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Healthcheck *struct {
		Test []string `json:"test"`
	} `json:"healthcheck"`
}

// interpolation is compose's ${NAME}, ${NAME:-default} or ${NAME:?error}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// TestComposeFile holds deploy/compose.yaml to this build: every dml
// service runs a dml command that exists, with flags that exist, and
// DML_ variables dml serve reads; its secrets come from .env (required,
// so compose refuses to start without them, and listed in example.env);
// every service has a health check, the replicas wait for PostgreSQL and
// MinIO, and the proxy balances over every replica.
func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]composeService `json:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatal(err)
	}
	// Values as compose sees them once .env is read.
	fill := func(s string) string {
		return interpolation.ReplaceAllStringFunc(s, func(m string) string {
			g := interpolation.FindStringSubmatch(m)
			if g[2] == ":-" || g[2] == "-" {
				return g[3]
			}
			return "value-of-" + strings.ToLower(g[1])
		})
	}
	fillAll := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = fill(a)
		}
		return out
	}

	var replicas []string
	for name, s := range compose.Services {
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
		if s.Build == nil && !strings.HasPrefix(s.Image, "dml:") {
			continue
		}
		replicas = append(replicas, name)
		if len(s.Entrypoint) != 1 || s.Entrypoint[0] != "/dml" {
			t.Errorf("%s: entrypoint %q, want [/dml] (the image's binary)", name, s.Entrypoint)
		}
		if cmd := checkCommand(t, name+" command", fillAll(s.Command)); cmd != nil && cmd.Name() != "serve" {
			t.Errorf("%s runs dml %s, want serve", name, cmd.Name())
		}
		if s.Healthcheck != nil && len(s.Healthcheck.Test) > 2 && s.Healthcheck.Test[0] == "CMD" && s.Healthcheck.Test[1] == "/dml" {
			checkCommand(t, name+" healthcheck", fillAll(s.Healthcheck.Test[2:]))
		} else {
			t.Errorf("%s: health check %q, want [CMD /dml ...] (distroless has no shell or curl)", name, s.Healthcheck)
		}
		for k, v := range s.Environment {
			if strings.HasPrefix(k, "DML_") {
				filled := fill(v)
				checkServeEnv(t, name+" environment", k, &filled)
			}
			if slices.Contains(secretEnv, k) {
				checkComposeSecret(t, name, k, v)
			}
		}
		for _, k := range []string{"DML_DATABASE", "DML_S3_ACCESS_KEY", "DML_S3_SECRET_KEY", "DML_SERVER_KEY", "DML_LOG_KEY"} {
			if s.Environment[k] == "" {
				t.Errorf("%s: %s unset: replicas share metadata, blobs and keys", name, k)
			}
		}
	}
	slices.Sort(replicas)
	if len(replicas) < 2 {
		t.Fatalf("dml services %v, want two replicas", replicas)
	}
	// Every replica waits, directly or through another, for the database
	// and the bucket to be healthy.
	var healthyBefore func(name, dep string, depth int) bool
	healthyBefore = func(name, dep string, depth int) bool {
		for d, c := range compose.Services[name].DependsOn {
			if c.Condition == "service_healthy" && (d == dep || (depth < len(compose.Services) && healthyBefore(d, dep, depth+1))) {
				return true
			}
		}
		return false
	}
	for _, r := range replicas {
		for _, dep := range []string{"postgres", "minio"} {
			if !healthyBefore(r, dep, 0) {
				t.Errorf("%s does not wait for %s to be healthy", r, dep)
			}
		}
	}
	for _, k := range []string{"POSTGRES_PASSWORD"} {
		checkComposeSecret(t, "postgres", k, compose.Services["postgres"].Environment[k])
	}
	for _, k := range []string{"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"} {
		checkComposeSecret(t, "minio", k, compose.Services["minio"].Environment[k])
	}

	// The proxy balances over exactly the replicas, on the port they
	// listen on.
	caddy, err := os.ReadFile("../../deploy/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*reverse_proxy\s+([^{\n]+)`).FindSubmatch(caddy)
	if m == nil {
		t.Fatal("deploy/Caddyfile has no reverse_proxy")
	}
	var upstreams []string
	for _, u := range strings.Fields(string(m[1])) {
		host, port, _ := strings.Cut(u, ":")
		for _, r := range replicas {
			if r == host && !strings.HasSuffix(compose.Services[r].Environment["DML_LISTEN"], ":"+port) {
				t.Errorf("the proxy reaches %s on port %s, but it listens on %s", r, port, compose.Services[r].Environment["DML_LISTEN"])
			}
		}
		upstreams = append(upstreams, host)
	}
	slices.Sort(upstreams)
	if !slices.Equal(upstreams, replicas) {
		t.Errorf("the proxy balances over %v, want the replicas %v", upstreams, replicas)
	}

	// Every variable compose requires is in example.env, for the operator
	// to fill in.
	example, err := os.ReadFile("../../deploy/example.env")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range interpolation.FindAllStringSubmatch(string(data), -1) {
		if !regexp.MustCompile(`(?m)^` + g[1] + `=`).Match(example) {
			t.Errorf("compose.yaml uses ${%s}, which deploy/example.env does not list", g[1])
		}
	}
}

// checkComposeSecret fails t unless every secret part of value comes from
// a required variable (${NAME:?...}): a URL's password, else the whole.
func checkComposeSecret(t *testing.T, service, name, value string) {
	t.Helper()
	secret := value
	if u := regexp.MustCompile(`^[a-z]+://[^:/@]+:([^@]*)@`).FindStringSubmatch(value); u != nil {
		secret = u[1]
	}
	if g := interpolation.FindStringSubmatch(secret); g == nil || g[0] != secret || g[2] != ":?" {
		t.Errorf("%s: %s = %q: its secret %q must be a required variable from .env (${NAME:?message})", service, name, value, secret)
	}
}
