package names

import (
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Suggestions are what a not-found answer offers: at most this many, and
// the candidates they are chosen from share the first SuggestPrefixLen
// characters of the name asked for (a typo is rarely in the first
// letters, and the prefix keeps the store's query on its index).
const (
	MaxSuggestions   = 3
	SuggestPrefixLen = 3
	// SuggestCandidates bounds the candidates read for one answer.
	SuggestCandidates = 200
)

// SuggestPrefix is the prefix the candidates for name share.
func SuggestPrefix(name string) string {
	if len(name) <= SuggestPrefixLen {
		return name
	}
	return name[:SuggestPrefixLen]
}

// Suggest picks, from candidates, the names close to name, closest first:
// within an edit distance of a third of name's length (at least 1, so
// "payments/ap" finds "payments/api" and "1.4.3" finds "1.4.2"), or
// beginning with name when it is at least SuggestPrefixLen long. Name
// itself is never suggested.
func Suggest(name string, candidates []string) []string {
	type scored struct {
		name string
		dist int
	}
	limit := max(1, len(name)/3)
	var close []scored
	for _, c := range candidates {
		if c == name || slices.ContainsFunc(close, func(s scored) bool { return s.name == c }) {
			continue
		}
		d := levenshtein.ComputeDistance(name, c)
		if d <= limit || (len(name) >= SuggestPrefixLen && strings.HasPrefix(c, name)) {
			close = append(close, scored{c, d})
		}
	}
	slices.SortFunc(close, func(a, b scored) int {
		if a.dist != b.dist {
			return a.dist - b.dist
		}
		return strings.Compare(a.name, b.name)
	})
	out := make([]string, 0, min(len(close), MaxSuggestions))
	for _, s := range close[:min(len(close), MaxSuggestions)] {
		out = append(out, s.name)
	}
	return out
}
