package retention_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/retention"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func daysAgo(d int) time.Time { return now.Add(-time.Duration(d) * 24 * time.Hour) }

func ver(version string, state catalog.ArtifactState, age int) retention.Version {
	return retention.Version{Name: "payments/api", Version: version, State: state, CreatedAt: daysAgo(age), Size: 10}
}

func refs(ds []retention.Decision) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Version.Version)
	}
	return out
}

func TestPlan(t *testing.T) {
	admitted, quarantined, rejected := catalog.StateAdmitted, catalog.StateQuarantined, catalog.StateRejected
	inRelease := func(v retention.Version) retention.Version { v.InRelease = true; return v }
	retired := func(v retention.Version) retention.Version { v.Retired = true; return v }
	tag := func(v retention.Version) retention.Version { v.OCITag = true; return v }
	policy := &retention.Policy{ID: "p", Pattern: "payments/*", KeepAdmitted: 2, DeleteQuarantinedAfterDays: 30, DeleteRejectedAfterDays: 7}
	for _, tc := range []struct {
		name     string
		policy   *retention.Policy
		versions []retention.Version
		want     []string
	}{
		{"no policy deletes nothing", nil, []retention.Version{ver("1", admitted, 100), ver("2", quarantined, 100)}, []string{}},
		{"keeps the newest N admitted", policy,
			[]retention.Version{ver("1", admitted, 5), ver("2", admitted, 4), ver("3", admitted, 3), ver("4", admitted, 2)}, []string{"2", "1"}},
		{"newest is by push time, not by version string", policy,
			[]retention.Version{ver("9", admitted, 10), ver("10", admitted, 1), ver("11", admitted, 2)}, []string{"9"}},
		{"equal push times: the higher version string is newer", policy,
			[]retention.Version{ver("a", admitted, 1), ver("b", admitted, 1), ver("c", admitted, 1)}, []string{"a"}},
		{"a version a release names is kept, and still takes its place", policy,
			[]retention.Version{inRelease(ver("1", admitted, 5)), ver("2", admitted, 4), ver("3", admitted, 3), ver("4", admitted, 2)}, []string{"2"}},
		{"an older version in a closed or open release is kept", policy,
			[]retention.Version{inRelease(ver("1", admitted, 500)), ver("2", admitted, 3), ver("3", admitted, 2), ver("4", admitted, 1)}, []string{"2"}},
		{"retired versions take no place and go", policy,
			[]retention.Version{retired(ver("1", admitted, 1)), ver("2", admitted, 4), ver("3", admitted, 3)}, []string{"1"}},
		{"a retired version a release names stays", policy,
			[]retention.Version{inRelease(retired(ver("1", admitted, 1))), ver("2", admitted, 4)}, []string{}},
		{"quarantined older than its age go, younger stay", policy,
			[]retention.Version{ver("q-old", quarantined, 31), ver("q-new", quarantined, 29), ver("q-edge", quarantined, 30)}, []string{"q-old"}},
		{"rejected by its own age", policy,
			[]retention.Version{ver("r-old", rejected, 8), ver("r-new", rejected, 6), ver("q", quarantined, 8)}, []string{"r-old"}},
		{"a quarantined push a release names stays", policy,
			[]retention.Version{inRelease(ver("q", quarantined, 90))}, []string{}},
		{"OCI tags are left to the registry", policy,
			[]retention.Version{tag(ver("q", quarantined, 90)), tag(ver("1", admitted, 9)), ver("2", admitted, 2), ver("3", admitted, 1)}, []string{}},
		{"age 0 never deletes, keep 0 keeps every admitted", &retention.Policy{ID: "p", Pattern: "*", DeleteRejectedAfterDays: 1},
			[]retention.Version{ver("q", quarantined, 900), ver("r", rejected, 2), ver("1", admitted, 900), ver("2", admitted, 1), ver("3", admitted, 0)}, []string{"r"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := retention.Plan(tc.policy, tc.versions, now)
			if !slices.Equal(refs(got), tc.want) {
				t.Fatalf("Plan deletes %v, want %v", refs(got), tc.want)
			}
			for _, d := range got {
				if d.Policy != tc.policy.ID || d.Reason == "" {
					t.Errorf("decision %s: policy %q reason %q", d.Ref(), d.Policy, d.Reason)
				}
			}
		})
	}
}

func TestPolicyFor(t *testing.T) {
	policies := []retention.Policy{
		{ID: "all", Pattern: "**"},
		{ID: "payments", Pattern: "payments/*"},
		{ID: "payments-deep", Pattern: "payments/**"},
		{ID: "api-exact", Pattern: "payments/api"},
		{ID: "b-tie", Pattern: "web/*"},
		{ID: "a-tie", Pattern: "web/*"},
	}
	for name, want := range map[string]string{
		"payments/api":      "api-exact",
		"payments/worker":   "payments",
		"payments/worker/x": "payments-deep",
		"tools/lint":        "all",
		"web/site":          "a-tie",
	} {
		got := retention.PolicyFor(policies, name)
		if got == nil || got.ID != want {
			t.Errorf("PolicyFor(%q) = %v, want %s", name, got, want)
		}
	}
	if got := retention.PolicyFor(policies[1:2], "other/x"); got != nil {
		t.Errorf("PolicyFor(other/x) = %v, want none", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	good := retention.Policy{ID: "payments", Pattern: "payments/**", KeepAdmitted: 3}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", good, err)
	}
	for name, mutate := range map[string]func(*retention.Policy){
		"bad id":                     func(p *retention.Policy) { p.ID = "Pay/ments" },
		"empty pattern":              func(p *retention.Policy) { p.Pattern = "" },
		"bad pattern":                func(p *retention.Policy) { p.Pattern = "payments/[" },
		"control character":          func(p *retention.Policy) { p.Pattern = "pay\nments" },
		"negative keep":              func(p *retention.Policy) { p.KeepAdmitted = -1 },
		"negative age":               func(p *retention.Policy) { p.DeleteRejectedAfterDays = -1 },
		"age out of range":           func(p *retention.Policy) { p.DeleteQuarantinedAfterDays = 1 << 30 },
		"a policy that does nothing": func(p *retention.Policy) { p.KeepAdmitted = 0 },
	} {
		p := good
		mutate(&p)
		if err := p.Validate(); !errors.Is(err, errdef.ErrInvalidInput) {
			t.Errorf("%s: Validate = %v, want ErrInvalidInput", name, err)
		}
	}
}
