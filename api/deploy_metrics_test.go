package api_test

import (
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const (
	dashboardFile = "../deploy/grafana/dml.json"
	alertsFile    = "../deploy/prometheus/alerts.yaml"
)

// exportedMetrics runs a normal flow (a signed and tested push, a release
// from plan to close, a download, the audit log verified) on a real test
// server and reads its /metrics: the metric families it exports, by name,
// with their type ("# TYPE" lines).
func exportedMetrics(t *testing.T) map[string]string {
	t.Helper()
	e := newRelEnv(t, true)
	e.driveTo(t, "closed")
	if code, _, _ := fetch(t, e.artifactURL+"/content", e.publisher); code != 200 {
		t.Fatalf("download: %d", code)
	}
	if err := e.svc.Audit.VerifyLog(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, _, body := fetch(t, e.url+"/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	return out
}

var metricName = regexp.MustCompile(`\bdml_[a-z0-9_]+`)

// namesIn lists the dml_ metrics an expression uses, a histogram's
// series (_bucket, _count, _sum) under the histogram's name.
func namesIn(expr string, exported map[string]string) []string {
	var out []string
	for _, n := range metricName.FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(n, suffix); ok && exported[base] == "histogram" {
				n = base
			}
		}
		out = append(out, n)
	}
	return out
}

// The Grafana dashboard and the alert rules use only metrics the server
// exports, and the dashboard shows (and docs/operations.md explains)
// every dml metric the server exports: renaming one breaks this test,
// not a graph in production.
func TestDeployMetricsExist(t *testing.T) {
	exported := exportedMetrics(t)

	dashboard := dashboardExprs(t)
	alerts := alertRules(t)
	used := map[string]bool{}
	check := func(where, expr string) {
		if strings.TrimSpace(expr) == "" {
			t.Errorf("%s: empty expression", where)
		}
		if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") || strings.Count(expr, "[") != strings.Count(expr, "]") {
			t.Errorf("%s: unbalanced brackets in %q", where, expr)
		}
		names := namesIn(expr, exported)
		if len(names) == 0 {
			t.Errorf("%s: %q uses no dml metric", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if _, ok := exported[n]; !ok {
				t.Errorf("%s: %s is not a metric the server exports", where, n)
			}
		}
	}
	for where, expr := range dashboard {
		check(dashboardFile+": "+where, expr)
	}
	onDashboard := maps.Clone(used)
	for _, r := range alerts {
		check(alertsFile+": "+r.Alert, r.Expr)
	}
	// Everything dml exports is on the dashboard, but the one timestamp
	// (the verification's outcome and age are).
	for name := range exported {
		if strings.HasPrefix(name, "dml_") && name != "dml_audit_verification_timestamp_seconds" && !onDashboard[name] {
			t.Errorf("%s is exported but not on the dashboard", name)
		}
	}
	// And docs/operations.md says what each one means.
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range dmlNames(exported) {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/operations.md does not list the metric `%s`", name)
		}
	}
	t.Logf("dashboard uses %d metrics, alerts %d rules; exported dml metrics: %s", len(onDashboard), len(alerts), strings.Join(dmlNames(exported), " "))
}

func dmlNames(m map[string]string) []string {
	var out []string
	for n := range m {
		if strings.HasPrefix(n, "dml_") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// dashboardExprs reads the dashboard and returns each target's PromQL by
// panel title, checking the panels' shape on the way.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name, Type string
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s: a dashboard needs a title and a uid", dashboardFile)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct{ Name, Type string }) bool { return v.Name == "datasource" && v.Type == "datasource" }) {
		t.Errorf("%s: no datasource variable; the panels name ${datasource}", dashboardFile)
	}
	out := map[string]string{}
	titles := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if titles[p.Title] {
			t.Errorf("%s: two panels titled %q", dashboardFile, p.Title)
		}
		titles[p.Title] = true
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("%s: panel %q needs the ${datasource} data source and a query", dashboardFile, p.Title)
		}
		for _, tg := range p.Targets {
			out[p.Title+"/"+tg.RefID] = tg.Expr
		}
	}
	return out
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// alertRules reads the rule file, checking its shape as Prometheus reads
// it: groups of named rules, each alert with an expression, a severity,
// a summary and a description, and a valid "for".
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var out []alertRule
	seen := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("%s: a group needs a name and rules", alertsFile)
		}
		for _, r := range g.Rules {
			switch {
			case r.Alert == "" || seen[r.Alert]:
				t.Errorf("%s: rule %q: an alert needs a unique name", alertsFile, r.Alert)
			case r.Labels["severity"] != "critical" && r.Labels["severity"] != "warning":
				t.Errorf("%s: %s: severity %q; want critical or warning", alertsFile, r.Alert, r.Labels["severity"])
			case r.Annotations["summary"] == "" || r.Annotations["description"] == "":
				t.Errorf("%s: %s: needs a summary and a description", alertsFile, r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: %s: for %q: %v", alertsFile, r.Alert, r.For, err)
				}
			}
			seen[r.Alert] = true
			out = append(out, r)
		}
	}
	// The states that need a person (issue 15): each has its alert.
	for _, name := range []string{"DMLBlobCorruptionDetected", "DMLQuarantineBacklogGrowing", "DMLQuarantinedTooLong",
		"DMLAuditVerificationFailing", "DMLAuditCheckpointTooOld", "DMLBackendErrors", "DMLDatabaseErrors", "DMLWebhookDeliveriesFailing"} {
		if !seen[name] {
			t.Errorf("%s: no alert %s", alertsFile, name)
		}
	}
	return out
}
