package releases

import (
	"fmt"
	"regexp"
)

// The OCI distribution spec grammars: a repository name is path components
// of lowercase alphanumerics joined by separators; a tag is up to 128
// characters of [A-Za-z0-9_.-] not starting with '.' or '-'.
var (
	nameRE    = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// maxNameLength keeps names within what common registries and file systems accept.
const maxNameLength = 255

// ValidateName checks an artifact name against the OCI repository grammar.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > maxNameLength || !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q must match the OCI repository grammar (lowercase path components such as payments/api, at most %d characters)", ErrNameInvalid, name, maxNameLength)
	}
	return nil
}

// ValidateVersion checks a version against the OCI tag grammar.
func ValidateVersion(version string) error {
	if !versionRE.MatchString(version) {
		return fmt.Errorf("%w: %q must match the OCI tag grammar [A-Za-z0-9_][A-Za-z0-9._-]{0,127}", ErrVersionInvalid, version)
	}
	return nil
}
