package signing

import "fmt"

// Name patterns are the trust policy's (Rule.Match), exported so that
// other rules keyed by artifact name (retention policies) match and rank
// names exactly as admission does: one grammar for the operator to learn.

// ValidateNamePattern refuses what Rule.Match refuses: an empty segment, a
// "**" that is not a whole segment, a malformed path.Match class, a
// control character.
func ValidateNamePattern(pattern string) error {
	if pattern == "" || hasControl(pattern) {
		return fmt.Errorf("pattern %q must be non-empty, without control characters", pattern)
	}
	return validatePattern(pattern)
}

// MatchNamePattern reports whether pattern covers name (see Rule).
func MatchNamePattern(pattern, name string) bool { return matchPattern(pattern, name) }

// MoreSpecificPattern reports whether pattern a strictly outranks b when
// both match a name (see Policy.RuleFor).
func MoreSpecificPattern(a, b string) bool { return moreSpecific(a, b) }
