package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/bench"
	"github.com/dmlproject/dml/store/storetest"
)

// TestBenchShort runs `dml bench --short -o json` from a built binary, as
// scripts/test.sh does: every scenario group gives rows, each with dml's
// side and its baseline measured, and the server's peak memory where a
// server ran — or is skipped only for the tool it was not given. No
// figure is asserted: speed is for the report, not for a test.
//
// The reference registry is `registry` on PATH (scripts/test.sh installs
// distribution's); the S3 scenarios run when DML_TEST_S3_ENDPOINT is
// set. In CI both must be there.
func TestBenchShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every bench scenario (about half a minute)")
	}
	bin := dmlBinary(t)
	args := []string{"bench", "--short", "--output", "json", "--work-dir", t.TempDir()}
	env := os.Environ()
	registry, err := exec.LookPath("registry")
	switch {
	case err == nil:
		args = append(args, "--registry-bin", registry)
	case os.Getenv("CI") != "":
		t.Fatal("no reference registry on PATH: CI must run dml bench against it (scripts/test.sh installs it)")
	}
	if os.Getenv(storetest.EnvS3Endpoint) != "" || os.Getenv("CI") != "" {
		endpoint, accessKey, secretKey := storetest.S3FromEnv(t)
		args = append(args, "--s3-endpoint", endpoint, "--s3-bucket", fmt.Sprintf("bench-e2e-%d", time.Now().UnixNano()))
		env = append(env, "DML_S3_ACCESS_KEY="+accessKey, "DML_S3_SECRET_KEY="+secretKey)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dml %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rep bench.Report
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("the report is not the JSON of a bench.Report: %v\n%s", err, stdout.String())
	}
	if dec.More() {
		t.Error("more than one JSON document on stdout")
	}
	if rep.Reps != 1 {
		t.Errorf("reps = %d, want 1 with --short", rep.Reps)
	}
	mayBeSkipped := map[string]bool{"v2 vs registry": registry == "", "s3": os.Getenv(storetest.EnvS3Endpoint) == ""}
	for _, group := range bench.ScenarioNames() {
		var rows []bench.Row
		for _, r := range rep.Rows {
			if r.Group == group {
				rows = append(rows, r)
			}
		}
		skipped := slices.ContainsFunc(rep.Skipped, func(s string) bool { return strings.HasPrefix(s, group+": ") })
		switch {
		case skipped && mayBeSkipped[group] && len(rows) == 0:
			continue
		case skipped:
			t.Errorf("%s skipped although it has what it needs: %v", group, rep.Skipped)
		case len(rows) == 0:
			t.Errorf("no row for scenario %s", group)
		}
		for _, r := range rows {
			if r.Scenario == "" || len(r.DML.Samples) != 1 || r.DML.Median <= 0 || r.DML.Min <= 0 {
				t.Errorf("%s: dml side %+v", r.Scenario, r.DML)
			}
			if r.Base == nil || r.Baseline == "" || len(r.Base.Samples) != 1 || r.Base.Median <= 0 || r.Ratio <= 0 {
				t.Errorf("%s: no baseline measured in the run (%q, %+v)", r.Scenario, r.Baseline, r.Base)
			}
			if (r.Bytes > 0) == (r.Ops > 0) {
				t.Errorf("%s: work is %d bytes and %d ops; want one of them", r.Scenario, r.Bytes, r.Ops)
			}
			if server := group != "verification"; server && r.PeakRSS <= 0 {
				t.Errorf("%s: no peak memory of the server", r.Scenario)
			}
			if r.Group == "v2 vs registry" && r.BasePeakRSS <= 0 {
				t.Errorf("%s: no peak memory of the registry", r.Scenario)
			}
		}
	}
	for _, r := range rep.Rows {
		if !slices.Contains(bench.ScenarioNames(), r.Group) {
			t.Errorf("row %q of an unknown group %q", r.Scenario, r.Group)
		}
	}
}
