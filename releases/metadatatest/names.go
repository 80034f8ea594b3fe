package metadatatest

import (
	"slices"
	"strings"
	"testing"
)

// wantNames checks a names-with-prefix query (ArtifactNames,
// ReleaseNames) against the names stored: for each prefix and limit, the
// distinct names that begin with the prefix, in order, at most limit.
func wantNames(t *testing.T, what string, stored []string, query func(prefix string, limit int) ([]string, error)) {
	t.Helper()
	slices.Sort(stored)
	stored = slices.Compact(stored)
	prefixes := []string{"", "zzz-none"}
	for _, n := range stored {
		prefixes = append(prefixes, n[:1], n[:min(3, len(n))], n)
	}
	for _, prefix := range prefixes {
		for _, limit := range []int{1, 2, 1000} {
			var want []string
			for _, n := range stored {
				if strings.HasPrefix(n, prefix) && len(want) < limit {
					want = append(want, n)
				}
			}
			got, err := query(prefix, limit)
			if err != nil {
				t.Fatalf("%s(%q, %d): %v", what, prefix, limit, err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s(%q, %d) = %q, want %q", what, prefix, limit, got, want)
			}
		}
	}
	if got, err := query("a", 0); err != nil || len(got) != 0 {
		t.Errorf("%s with limit 0 = %q, %v; want none", what, got, err)
	}
}

func testArtifactNames(t *testing.T, m store) {
	var stored []string
	for _, a := range listFixture(t, m) {
		stored = append(stored, a.Name)
	}
	wantNames(t, "ArtifactNames", stored, func(prefix string, limit int) ([]string, error) {
		return m.ArtifactNames(t.Context(), prefix, limit)
	})
}

func testReleaseNames(t *testing.T, m store) {
	var stored []string
	for _, r := range releaseFixture(t, m) {
		stored = append(stored, r.Name)
	}
	wantNames(t, "ReleaseNames", stored, func(prefix string, limit int) ([]string, error) {
		return m.ReleaseNames(t.Context(), prefix, limit)
	})
}
