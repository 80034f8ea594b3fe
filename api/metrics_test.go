package api_test

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsByOperation: each request increments dml_http_requests_total
// (and the duration histogram) under the operation it asks for, read back
// from the Prometheus registry: the catch-alls count as what their
// dispatchers serve, POST .../blobs/uploads/ as a session start, a mount or
// a whole blob, and a request no route takes as "unmatched". The requests
// reach every operation, and the labels hold no name, tag or digest.
func TestMetricsByOperation(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, admin, _ := testserver.New(t, testserver.WithAPI(func(c *api.Config) { c.Registry = reg }))
	client := registry{t: t, base: srv.URL, token: admin}
	const (
		version = "/api/v1/artifacts/apps/metered/versions/1.0"
		missing = "/api/v1/artifacts/apps/missing/versions/9.9"
		release = "/api/v1/releases/no-such-release"
		repo    = "/v2/apps/metered"
		dgst    = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	)
	for _, tc := range []struct {
		method, path string
		body         string
		operation    string
	}{
		{"GET", "/healthz", "", "health"},
		{"GET", "/readyz", "", "ready"},
		{"GET", "/metrics", "", "metrics"},
		{"GET", "/api/v1/openapi.json", "", "openapi_get"},

		{"PUT", version, "content", "artifact_push"},
		{"GET", "/api/v1/artifacts?name=apps/metered", "", "artifact_list"},
		{"GET", version, "", "artifact_get"},
		{"HEAD", version, "", "artifact_head"},
		{"GET", version + "/content", "", "content_get"},
		{"HEAD", version + "/content", "", "content_head"},
		{"GET", version + "/provenance", "", "provenance_get"},
		{"POST", missing + "/retire", "", "artifact_retire"},
		{"POST", missing + "/signatures", "{}", "evidence_add_signature"},
		{"POST", missing + "/attestations", "{}", "evidence_add_attestation"},
		{"GET", version + "/evidence", "", "evidence_list"},
		{"GET", version + "/evidence/" + dgst, "", "evidence_get"},
		{"HEAD", version + "/evidence/" + dgst, "", "evidence_head"},

		{"GET", "/api/v1/keys/server", "", "server_key_get"},
		{"GET", "/api/v1/trust/keys", "", "trust_key_list"},
		{"POST", "/api/v1/trust/keys", "{", "trust_key_add"},
		{"POST", "/api/v1/trust/keys/no-such-key/revoke", "", "trust_key_revoke"},
		{"GET", "/api/v1/trust/policy", "", "trust_policy_get"},
		{"PUT", "/api/v1/trust/policy", "{", "trust_policy_set"},
		{"GET", "/api/v1/trust/roots", "", "trust_root_list"},
		{"GET", "/api/v1/trust/roots/no-such-root", "", "trust_root_get"},
		{"PUT", "/api/v1/trust/roots/no-such-root", "{", "trust_root_put"},
		{"POST", "/api/v1/trust/roots/no-such-root/revoke", "", "trust_root_revoke"},
		{"GET", "/api/v1/trust/identities", "", "trust_identity_list"},
		{"POST", "/api/v1/trust/identities", "{", "trust_identity_add"},
		{"POST", "/api/v1/trust/identities/no-such-identity/revoke", "", "trust_identity_revoke"},

		{"GET", "/api/v1/releases", "", "release_list"},
		{"POST", "/api/v1/releases", "{", "release_create"},
		{"GET", release, "", "release_get"},
		{"GET", release + "/manifest", "", "release_manifest_get"},
		{"HEAD", release + "/manifest", "", "release_manifest_head"},
		{"PUT", release + "/plan", "{", "release_plan"},
		{"PUT", release + "/artifacts", "{", "release_artifacts"},
		{"POST", release + "/approvals", "{", "release_approval"},
		{"POST", release + "/deployments", "{", "release_deployment_record"},
		{"PATCH", release + "/deployments/no-such-deployment", "{", "release_deployment_update"},
		{"POST", release + "/review", "{", "release_review"},
		{"POST", release + "/cancel", "{", "release_cancel"},
		{"GET", "/api/v1/settings/gates", "", "gate_defaults_get"},
		{"PUT", "/api/v1/settings/gates", "{", "gate_defaults_set"},
		{"POST", release + "/emergency", "{", "release_emergency"},
		{"GET", "/api/v1/settings/change", "", "change_policy_get"},
		{"PATCH", "/api/v1/settings/change", "{", "change_policy_set"},

		{"GET", "/api/v1/audit/key", "", "audit_key"},
		{"GET", "/api/v1/audit/checkpoint", "", "audit_checkpoint"},
		{"GET", "/api/v1/audit/entries?limit=1", "", "audit_entries"},
		{"GET", "/api/v1/audit/proofs/inclusion", "", "audit_inclusion_proof"},
		{"GET", "/api/v1/audit/proofs/consistency", "", "audit_consistency_proof"},
		{"GET", "/api/v1/audit/access?limit=1", "", "audit_access_log"},
		{"POST", "/api/v1/admin/fsck", "{", "admin_fsck"},
		{"POST", "/api/v1/admin/gc", "{", "admin_gc"},
		{"GET", "/api/v1/retention/policies", "", "retention_policy_list"},
		{"GET", "/api/v1/retention/policies/no-such-policy", "", "retention_policy_get"},
		{"PUT", "/api/v1/retention/policies/no-such-policy", "{", "retention_policy_set"},
		{"DELETE", "/api/v1/retention/policies/no-such-policy", "", "retention_policy_delete"},
		{"POST", "/api/v1/retention/run?dryRun=true", "", "retention_run"},
		{"GET", "/api/v1/quotas", "", "quota_list"},
		{"GET", "/api/v1/quotas/no-such/", "", "quota_get"},
		{"PUT", "/api/v1/quotas/no-such/", "{", "quota_set"},
		{"DELETE", "/api/v1/quotas/no-such/", "", "quota_delete"},

		{"GET", "/api/v1/whoami", "", "token_whoami"},
		{"GET", "/api/v1/tokens", "", "token_list"},
		{"POST", "/api/v1/tokens", "{", "token_issue"},
		{"DELETE", "/api/v1/tokens/no-such-token", "", "token_revoke"},
		{"GET", "/api/v1/sso/providers", "", "sso_providers"},
		{"POST", "/api/v1/sso/sessions", "{", "sso_sign_in"},
		{"DELETE", "/api/v1/sso/session", "", "sso_sign_out"},

		{"GET", "/api/v1/events?limit=1", "", "event_list"},
		{"POST", "/api/v1/webhooks", "{", "webhook_create"},
		{"GET", "/api/v1/webhooks", "", "webhook_list"},
		{"GET", "/api/v1/webhooks/no-such-webhook", "", "webhook_get"},
		{"DELETE", "/api/v1/webhooks/no-such-webhook", "", "webhook_delete"},
		{"GET", "/api/v1/webhooks/no-such-webhook/deliveries", "", "webhook_deliveries"},
		{"POST", "/api/v1/webhooks/no-such-webhook/deliveries/1/redeliver", "", "webhook_redeliver"},

		{"GET", "/v2/", "", "registry_ping"},
		{"HEAD", "/v2/", "", "registry_ping"},
		{"POST", repo + "/blobs/uploads/", "", "blob_upload_start"},
		{"POST", repo + "/blobs/uploads/?mount=" + dgst + "&from=apps/other", "", "blob_mount"},
		{"POST", repo + "/blobs/uploads/?digest=" + dgst, "not empty", "blob_upload_monolithic"},
		{"GET", repo + "/blobs/uploads/no-such-upload", "", "blob_upload_status"},
		{"PATCH", repo + "/blobs/uploads/no-such-upload", "chunk", "blob_upload_patch"},
		{"PUT", repo + "/blobs/uploads/no-such-upload?digest=" + dgst, "", "blob_upload_put"},
		{"DELETE", repo + "/blobs/uploads/no-such-upload", "", "blob_upload_cancel"},
		{"GET", repo + "/blobs/" + dgst, "", "blob_get"},
		{"HEAD", repo + "/blobs/" + dgst, "", "blob_head"},
		{"DELETE", repo + "/blobs/" + dgst, "", "blob_delete"},
		{"GET", repo + "/manifests/1.0", "", "manifest_get"},
		{"HEAD", repo + "/manifests/" + dgst, "", "manifest_head"},
		{"PUT", repo + "/manifests/2.0", "{", "manifest_put"},
		{"DELETE", repo + "/manifests/2.0", "", "manifest_delete"},
		{"GET", repo + "/tags/list", "", "tag_list"},
		{"GET", repo + "/referrers/" + dgst, "", "referrers_list"},

		{"GET", "/no-such-path", "", "unmatched"},
		{"GET", "/api/v1/no-such-path", "", "unmatched"},
		{"DELETE", "/api/v1/releases", "", "unmatched"},
		{"GET", "/api/v1/artifacts/apps/metered/no-such-action", "", "unmatched"},
		{"POST", version, "", "unmatched"},
		{"GET", repo + "/no-such-kind", "", "unmatched"},
		{"POST", repo + "/tags/list", "", "unmatched"},
		{"BREW", "/api/v1/releases", "", "unmatched"},
	} {
		before := requestCounts(t, reg)
		resp := client.do(tc.method, tc.path, strings.NewReader(tc.body), "Content-Type", "application/octet-stream")
		method := tc.method
		if method == "BREW" {
			method = "OTHER"
		}
		after := requestCounts(t, reg)
		for k, n := range after {
			want := before[k]
			if k == [2]string{method, tc.operation} {
				want++
			}
			if n != want {
				t.Errorf("%s %s (%d): %s %s counted %v times; want %v", tc.method, tc.path, resp.StatusCode, k[0], k[1], n, want)
			}
		}
		if after[[2]string{method, tc.operation}] == 0 {
			t.Errorf("%s %s (%d): not counted as %s %s", tc.method, tc.path, resp.StatusCode, method, tc.operation)
		}
	}

	// Every operation was reached, and the labels hold only the fixed set.
	counts := requestCounts(t, reg)
	var seen []string
	for k := range counts {
		seen = append(seen, k[1])
	}
	slices.Sort(seen)
	if seen = slices.Compact(seen); !slices.Equal(seen, api.Operations()) {
		t.Errorf("operations counted:\n%v\nwant every operation:\n%v", seen, api.Operations())
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "dml_http_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				ok := true
				switch l.GetName() {
				case "operation":
					ok = slices.Contains(api.Operations(), l.GetValue())
				case "method":
					ok = slices.Contains(methods, l.GetValue())
				case "code":
					ok = regexp.MustCompile(`^[1-5][0-9][0-9]$`).MatchString(l.GetValue())
				default:
					ok = false
				}
				if !ok {
					t.Errorf("%s has the label %s=%q, outside its fixed set", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// requestCounts reads dml_http_requests_total from reg, summed over status
// codes, by method and operation. It checks that the duration histogram
// counted the same requests.
func requestCounts(t *testing.T, reg *prometheus.Registry) map[[2]string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[[2]string]float64{}
	durations := map[[2]string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			k := [2]string{labels["method"], labels["operation"]}
			switch f.GetName() {
			case "dml_http_requests_total":
				counts[k] += m.GetCounter().GetValue()
			case "dml_http_request_duration_seconds":
				durations[k] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for k, n := range counts {
		if durations[k] != n {
			t.Errorf("%s %s: %v requests counted, %v durations observed", k[0], k[1], n, durations[k])
		}
	}
	return counts
}

// TestEveryRouteHasAnOperation: every row of the access matrix names its
// operation for the metrics, in the label's grammar, and no two routes
// share one (but the GET and HEAD of the registry's ping, which are one
// thing); docs/operations.md lists every operation.
func TestEveryRouteHasAnOperation(t *testing.T) {
	grammar := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	byOperation := map[string]api.AccessRule{}
	for _, r := range api.AccessMatrix {
		if !grammar.MatchString(r.Operation) {
			t.Errorf("%s %s: operation %q; want lower-case words joined by _", r.Method, r.Path, r.Operation)
			continue
		}
		if other, ok := byOperation[r.Operation]; ok && other.Path != r.Path {
			t.Errorf("%s %s and %s %s are both operation %q", other.Method, other.Path, r.Method, r.Path, r.Operation)
		}
		byOperation[r.Operation] = r
	}
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range api.Operations() {
		if !bytes.Contains(doc, []byte("`"+op+"`")) {
			t.Errorf("docs/operations.md does not list the operation `%s`", op)
		}
	}
}
