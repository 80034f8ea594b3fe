package signing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode"

	"github.com/dmlproject/dml/internal/strictjson"
	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// Policy is the trust policy: per artifact-name pattern, which signers and
// which attestations an artifact needs to be admitted. It is pure data;
// Evaluate applies it.
//
//	{"rules":[{"match":"payments/*",
//	           "signatures":{"keys":["ci"],"threshold":1},
//	           "attestations":[{"predicateType":"https://in-toto.io/attestation/test-result/v0.1","keys":["ci"]},
//	                           {"predicateType":"https://slsa.dev/provenance/v1","keys":["ci"],
//	                            "builderIds":["https://github.com/org/repo/.github/workflows/build.yml@refs/heads/main"]}]}]}
type Policy struct {
	Rules []Rule `json:"rules"`
}

// Rule is the requirement for the artifact names its Match pattern covers.
//
// Match is an exact name ("payments/api") or a glob over "/"-separated
// segments: each segment follows path.Match ("*", "?", "[a-z]"), and a
// segment "**" matches any number of segments, including none
// ("payments/**" covers "payments", "payments/api" and "payments/api/v2").
type Rule struct {
	Match        string                   `json:"match"`
	Signatures   *SignatureRequirement    `json:"signatures,omitempty"`
	Attestations []AttestationRequirement `json:"attestations,omitempty"`
}

// SignatureRequirement asks for signatures over the artifact by Threshold
// distinct keys among Keys. Threshold 0 means 1.
type SignatureRequirement struct {
	Keys      []string `json:"keys"`
	Threshold int      `json:"threshold,omitempty"`
}

// AttestationRequirement asks for a verified attestation of PredicateType
// signed by one of Keys. For SLSA provenance, BuilderIDs (when set) lists
// the builders allowed.
type AttestationRequirement struct {
	PredicateType string   `json:"predicateType"`
	Keys          []string `json:"keys"`
	BuilderIDs    []string `json:"builderIds,omitempty"`
}

// ParsePolicy reads a policy from JSON or YAML (same field names) and
// validates it. Unknown fields are errors: a misspelt "treshold" must not
// silently weaken a rule. So is anything two readers could take
// differently (see policyJSON).
func ParsePolicy(data []byte) (*Policy, error) {
	jsonData, err := policyJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	dec := json.NewDecoder(bytes.NewReader(jsonData))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// policyJSON returns the policy document as JSON. It refuses what two
// readers could take differently: a key given twice (in JSON also when
// the two differ only in case, as encoding/json matches fields), anything
// after the document (a second JSON value, a second YAML document) and
// excessive nesting. A document that parses as JSON is JSON; anything else
// is read as YAML.
func policyJSON(data []byte) ([]byte, error) {
	err := strictjson.Check(data)
	if err == nil {
		return data, nil
	}
	if !errors.Is(err, strictjson.ErrSyntax) {
		return nil, err // JSON, but ambiguous
	}
	// The YAML decoder reads the first document and ignores the rest of
	// the stream unless asked for the next one.
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	var first, second any
	if err := dec.Decode(&first); err != nil && err != io.EOF {
		return nil, err
	}
	if err := dec.Decode(&second); err != io.EOF {
		if err == nil {
			err = errors.New("more than one YAML document")
		}
		return nil, err
	}
	jsonData, err := yaml.YAMLToJSONStrict(data) // strict: a YAML key given twice is an error
	if err != nil {
		return nil, err
	}
	if err := strictjson.Check(jsonData); err != nil {
		return nil, err
	}
	return jsonData, nil
}

// Validate reports every problem of the policy at once, each wrapped with
// ErrInvalidPolicy. An empty policy is valid: it admits nothing.
func (p *Policy) Validate() error {
	var errs []error
	seen := map[string]int{}
	for i, r := range p.Rules {
		where := fmt.Sprintf("rule %d (match %q)", i, r.Match)
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidPolicy, where, fmt.Sprintf(format, args...)))
		}
		if r.Match == "" {
			bad("match is empty")
		} else if hasControl(r.Match) {
			bad("match contains a control character (no artifact name does)")
		} else if err := validatePattern(r.Match); err != nil {
			bad("%v", err)
		}
		if j, dup := seen[r.Match]; dup && r.Match != "" {
			bad("duplicate match, already used by rule %d", j)
		}
		seen[r.Match] = i

		requires := false
		if s := r.Signatures; s != nil {
			if s.Threshold < 0 {
				bad("signatures.threshold %d is negative", s.Threshold)
			}
			if s.Threshold > len(s.Keys) {
				bad("signatures.threshold %d exceeds the %d keys listed", s.Threshold, len(s.Keys))
			}
			if err := validateKeyList(s.Keys); err != nil {
				bad("signatures.keys: %v", err)
			}
			requires = requires || len(s.Keys) > 0
		}
		predicates := map[string]bool{}
		for j, a := range r.Attestations {
			switch {
			case a.PredicateType == "":
				bad("attestations[%d]: predicateType is empty", j)
			case predicates[a.PredicateType]:
				bad("attestations[%d]: predicateType %s listed twice", j, a.PredicateType)
			case hasControl(a.PredicateType):
				bad("attestations[%d]: predicateType %q contains a control character", j, a.PredicateType)
			}
			predicates[a.PredicateType] = true
			if len(a.Keys) == 0 {
				bad("attestations[%d] (%s): keys is empty", j, a.PredicateType)
			} else if err := validateKeyList(a.Keys); err != nil {
				bad("attestations[%d] (%s): keys: %v", j, a.PredicateType, err)
			}
			if len(a.BuilderIDs) > 0 && !isSLSAProvenance(a.PredicateType) {
				bad("attestations[%d]: builderIds only apply to SLSA provenance, not %s", j, a.PredicateType)
			}
			for _, b := range a.BuilderIDs {
				if b == "" {
					bad("attestations[%d]: empty builder ID", j)
				} else if hasControl(b) {
					bad("attestations[%d]: builder ID %q contains a control character", j, b)
				}
			}
			requires = true
		}
		// A rule that asks for nothing would admit unsigned, untested
		// artifacts: the one thing the DML exists to prevent.
		if !requires {
			bad("requires no signature and no attestation")
		}
	}
	return errors.Join(errs...)
}

func validateKeyList(keys []string) error {
	seen := map[string]bool{}
	for _, k := range keys {
		if err := ValidateKeyID(k); err != nil {
			return err
		}
		if seen[k] {
			return fmt.Errorf("key %q listed twice", k)
		}
		seen[k] = true
	}
	return nil
}

func isSLSAProvenance(predicateType string) bool {
	return predicateType == PredicateSLSAProvenanceV1 || predicateType == PredicateSLSAProvenanceV02
}

// RuleFor returns the rule that governs name, or nil when none matches.
//
// When several patterns match, the most specific wins:
//  1. an exact name (no wildcard) equal to name;
//  2. otherwise the pattern with the longest literal prefix (the characters
//     before its first wildcard): "payments/api-*" beats "payments/*",
//     which beats "*/api";
//  3. on a tie, a pattern without "**" beats one with it ("payments/*"
//     beats "payments/**"), then the longer pattern, then the rule listed
//     first.
func (p *Policy) RuleFor(name string) *Rule {
	var best *Rule
	for i := range p.Rules {
		r := &p.Rules[i]
		if !matchPattern(r.Match, name) {
			continue
		}
		if best == nil || moreSpecific(r.Match, best.Match) {
			best = r
		}
	}
	return best
}

const globMeta = `*?[\`

func isLiteral(pattern string) bool { return !strings.ContainsAny(pattern, globMeta) }

func literalPrefixLen(pattern string) int {
	if i := strings.IndexAny(pattern, globMeta); i >= 0 {
		return i
	}
	return len(pattern)
}

// moreSpecific reports whether pattern a strictly outranks b (see RuleFor).
func moreSpecific(a, b string) bool {
	if la, lb := isLiteral(a), isLiteral(b); la != lb {
		return la
	}
	if pa, pb := literalPrefixLen(a), literalPrefixLen(b); pa != pb {
		return pa > pb
	}
	if da, db := strings.Contains(a, "**"), strings.Contains(b, "**"); da != db {
		return !da
	}
	return len(a) > len(b)
}

// hasControl reports whether s holds a control character: no artifact
// name, predicate type or builder URI does, and YAML cannot write one, so
// a policy holding one is refused rather than kept unmatchable.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

func validatePattern(pattern string) error {
	for _, seg := range strings.Split(pattern, "/") {
		if seg == "" {
			return fmt.Errorf("pattern %q has an empty segment", pattern)
		}
		if seg != "**" && strings.Contains(seg, "**") {
			return fmt.Errorf("pattern %q: ** must be a whole segment", pattern)
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", pattern, err)
		}
	}
	return nil
}

// matchPattern matches name against pattern segment by segment.
func matchPattern(pattern, name string) bool {
	if isLiteral(pattern) {
		return pattern == name
	}
	return matchSegments(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for skip := 0; skip <= len(name); skip++ {
				if matchSegments(rest, name[skip:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], name[0]); err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
