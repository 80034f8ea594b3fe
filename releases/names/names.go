package names

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/dmlproject/dml/releases/errdef"
)

// Errors of the grammars. ErrMediaTypeInvalid is also invalid input; the
// name and version errors are their own categories (the API answers them
// NAME_INVALID and VERSION_INVALID).
var (
	ErrNameInvalid      = errors.New("invalid artifact name")
	ErrVersionInvalid   = errors.New("invalid version")
	ErrMediaTypeInvalid = fmt.Errorf("%w: invalid media type", errdef.ErrInvalidInput)
)

// MaxPageSize bounds every list page the domain returns.
const MaxPageSize = 1000

// The OCI distribution spec grammars: a repository name is path components
// of lowercase alphanumerics joined by separators; a tag is up to 128
// characters of [A-Za-z0-9_.-] not starting with '.' or '-'.
var (
	nameRE    = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	// environmentRE: lowercase, as in "staging" or "prod-eu".
	environmentRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
)

// mediaTypeRE is RFC 6838 (section 4.2): type "/" subtype, each a
// restricted-name — a letter or digit, then at most 126 of letters,
// digits and ! # $ & - ^ _ . + — so a media type is at most 255
// characters. The OCI image spec requires this grammar of every
// mediaType and artifactType.
var mediaTypeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`)

// maxNameLength keeps names within what common registries and file systems accept.
const maxNameLength = 255

// ValidateName checks an artifact name against the OCI repository grammar.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > maxNameLength || !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q must match the OCI repository grammar (lowercase path components such as payments/api, at most %d characters)", ErrNameInvalid, name, maxNameLength)
	}
	return nil
}

// ReservedVersion is the one word of the tag grammar that is not a
// version: it separates name from version in the REST API's paths
// (/api/v1/artifacts/NAME/versions/VERSION[/ACTION]), and a version so
// named would make a path read two ways — /a/versions/versions/content is
// a:versions's content, or a/versions:content.
const ReservedVersion = "versions"

// ValidateVersion checks a version against the OCI tag grammar, less
// ReservedVersion.
func ValidateVersion(version string) error {
	if !versionRE.MatchString(version) {
		return fmt.Errorf("%w: %q must match the OCI tag grammar [A-Za-z0-9_][A-Za-z0-9._-]{0,127}", ErrVersionInvalid, version)
	}
	if version == ReservedVersion {
		return fmt.Errorf("%w: %q is reserved: it separates name and version in the REST API's paths", ErrVersionInvalid, version)
	}
	return nil
}

// ValidateMediaType checks a media type (without parameters) against the
// RFC 6838 grammar, which also bounds its length. The error quotes at
// most the first 64 characters: a media type is echoed, never a
// 20,000-character header.
func ValidateMediaType(mt string) error {
	if !mediaTypeRE.MatchString(mt) {
		return fmt.Errorf("%w: %.64q is not type/subtype of RFC 6838 names (a letter or digit, then letters, digits and !#$&^_.+-, at most 127 characters each)", ErrMediaTypeInvalid, mt)
	}
	return nil
}

// ParseContentType returns the media type of a Content-Type header value:
// its parameters dropped (the OCI spec tells registries to ignore them,
// and the REST API keeps the bare type), the rest checked by
// ValidateMediaType. An empty header gives "".
func ParseContentType(header string) (string, error) {
	mt, _, _ := strings.Cut(header, ";")
	mt = strings.TrimSpace(mt)
	if mt == "" && strings.TrimSpace(header) == "" {
		return "", nil
	}
	if err := ValidateMediaType(mt); err != nil {
		return "", fmt.Errorf("Content-Type: %w", err)
	}
	return mt, nil
}

// ValidateEnvironment checks an environment name ("staging", "prod-eu").
func ValidateEnvironment(env string) error {
	if !environmentRE.MatchString(env) {
		return fmt.Errorf("%w: environment %q must be lowercase letters, digits, '-' or '_' (at most 63)", errdef.ErrInvalidInput, env)
	}
	return nil
}
