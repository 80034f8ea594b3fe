package api

import "testing"

func TestParseArtifactPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want artifactRef
		ok   bool
	}{
		{"/payments/api/versions/1.4.2", artifactRef{"payments/api", "1.4.2", "", ""}, true},
		{"/payments/api/versions/1.4.2/content", artifactRef{"payments/api", "1.4.2", "content", ""}, true},
		{"/a/versions/content", artifactRef{"a", "content", "", ""}, true},
		{"/x/versions/1/versions/2", artifactRef{"x/versions/1", "2", "", ""}, true},
		{"/x/versions/1/versions/2/content", artifactRef{"x/versions/1", "2", "content", ""}, true},
		{"/payments/api/versions/1.4.2/evidence/sha256:abc", artifactRef{"payments/api", "1.4.2", "evidence", "sha256:abc"}, true},
		{"/payments/api/versions/1.4.2/signatures", artifactRef{"payments/api", "1.4.2", "signatures", ""}, true},
		{"/payments/api/versions/1.4.2/unknown", artifactRef{}, false},
		{"/payments/api", artifactRef{}, false},
		{"/versions/1", artifactRef{}, false},
		{"/", artifactRef{}, false},
	} {
		got, ok := parseArtifactPath(tc.path)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseArtifactPath(%q) = %+v, %v; want %+v, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}
