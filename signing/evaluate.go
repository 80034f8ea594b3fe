package signing

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// State is where an artifact stands against the trust policy.
type State string

const (
	// Admitted: the rule is met; the artifact is in the DML.
	Admitted State = "admitted"
	// Quarantined: the rule is not met yet; more evidence may admit it.
	Quarantined State = "quarantined"
	// Rejected: a key the rule trusts attested a failing test result.
	Rejected State = "rejected"
)

// Test results of the in-toto test-result predicate.
const (
	TestResultPassed = "PASSED"
	TestResultFailed = "FAILED"
)

// Decision is the outcome of Evaluate.
type Decision struct {
	State State `json:"state"`
	// Rule is the match pattern of the rule applied; empty when none matched.
	Rule string `json:"rule,omitempty"`
	// Unmet lists, readably, what is still missing.
	Unmet []string `json:"unmet,omitempty"`
	// Reason sums the decision up in one sentence.
	Reason string `json:"reason"`
	// Evidence lists the digests of the evidence that satisfied the rule
	// (admitted or partly met) or that rejected the artifact (rejected).
	Evidence []digest.Digest `json:"evidence,omitempty"`
}

// Evaluate applies the policy to the verified evidence of the artifact
// named artifactName. It is pure: the same input gives the same decision.
//
// A piece of evidence counts only if the key that verified it is listed by
// the requirement AND is in activeKeys (a key is active when
// activeKeys[id] is true; revoked keys are left out or false). Signature
// thresholds count distinct key IDs.
//
// The artifact is Rejected when a verified test-result attestation says
// FAILED and is signed by an active key that the rule lists anywhere (in
// signatures or in any attestation requirement): a signer we trust
// reported failing tests, whatever else is attached. It is Admitted when
// every requirement is met, and Quarantined otherwise — including when no
// rule matches (deny by default) or the policy is invalid.
func Evaluate(p *Policy, artifactName string, evidence []VerifiedEvidence, activeKeys map[string]bool) Decision {
	var rule *Rule
	if p != nil {
		// A policy built in code may not have been validated; an invalid
		// one admits nothing rather than something unintended.
		if err := p.Validate(); err != nil {
			msg := fmt.Sprintf("trust policy is invalid: %v", err)
			return Decision{State: Quarantined, Unmet: []string{msg}, Reason: msg}
		}
		rule = p.RuleFor(artifactName)
	}
	if rule == nil {
		msg := fmt.Sprintf("no trust policy rule matches %s", artifactName)
		return Decision{State: Quarantined, Unmet: []string{msg}, Reason: msg}
	}
	e := evaluation{rule: rule, evidence: evidence, active: activeKeys}
	if d, rejected := e.rejection(); rejected {
		return d
	}
	e.checkSignatures()
	for i := range rule.Attestations {
		e.checkAttestation(&rule.Attestations[i])
	}
	d := Decision{State: Admitted, Rule: rule.Match, Unmet: e.unmet, Evidence: e.used}
	if len(e.unmet) == 0 {
		d.Reason = fmt.Sprintf("trust policy rule %q is met", rule.Match)
	} else {
		d.State = Quarantined
		d.Reason = fmt.Sprintf("trust policy rule %q is not met: %s", rule.Match, strings.Join(e.unmet, "; "))
	}
	return d
}

type evaluation struct {
	rule     *Rule
	evidence []VerifiedEvidence
	active   map[string]bool
	unmet    []string
	used     []digest.Digest
}

func (e *evaluation) use(d digest.Digest) {
	if !slices.Contains(e.used, d) {
		e.used = append(e.used, d)
	}
}

// counts reports whether evidence signed by keyID counts for a requirement
// listing keys.
func (e *evaluation) counts(keyID string, keys []string) bool {
	return e.active[keyID] && slices.Contains(keys, keyID)
}

// inactiveNote mentions listed keys whose evidence was ignored because the
// key is no longer active, so an operator sees why it did not count.
func (e *evaluation) inactiveNote(kind Kind, predicateType string, keys []string) string {
	var ids []string
	for _, ev := range e.evidence {
		if ev.Kind == kind && (kind == KindSignature || ev.PredicateType == predicateType) &&
			slices.Contains(keys, ev.KeyID) && !e.active[ev.KeyID] && !slices.Contains(ids, ev.KeyID) {
			ids = append(ids, ev.KeyID)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return fmt.Sprintf(" (not counted: key %s inactive)", strings.Join(ids, ", "))
}

func (e *evaluation) rejection() (Decision, bool) {
	var keys []string
	if e.rule.Signatures != nil {
		keys = append(keys, e.rule.Signatures.Keys...)
	}
	for _, a := range e.rule.Attestations {
		keys = append(keys, a.Keys...)
	}
	var reasons []string
	var failing []digest.Digest
	for _, ev := range e.evidence {
		if ev.Kind != KindAttestation || ev.PredicateType != PredicateTestResult || !e.counts(ev.KeyID, keys) {
			continue
		}
		tr, err := ParseTestResult(ev.Predicate)
		if err != nil || tr.Result != TestResultFailed {
			continue
		}
		reason := fmt.Sprintf("test result %s attested by key %s", tr.Result, ev.KeyID)
		if len(tr.FailedTests) > 0 {
			reason += fmt.Sprintf(" (failed tests: %s)", strings.Join(tr.FailedTests, ", "))
		}
		reasons = append(reasons, reason)
		if !slices.Contains(failing, ev.Digest) {
			failing = append(failing, ev.Digest)
		}
	}
	if len(reasons) == 0 {
		return Decision{}, false
	}
	return Decision{
		State:    Rejected,
		Rule:     e.rule.Match,
		Reason:   strings.Join(reasons, "; "),
		Evidence: failing,
	}, true
}

func (e *evaluation) checkSignatures() {
	s := e.rule.Signatures
	if s == nil || len(s.Keys) == 0 {
		return
	}
	threshold := max(s.Threshold, 1)
	var signers []string
	var digests []digest.Digest
	for _, ev := range e.evidence {
		if ev.Kind == KindSignature && e.counts(ev.KeyID, s.Keys) && !slices.Contains(signers, ev.KeyID) {
			signers = append(signers, ev.KeyID)
			digests = append(digests, ev.Digest)
		}
	}
	for _, d := range digests {
		e.use(d)
	}
	if len(signers) < threshold {
		e.unmet = append(e.unmet, fmt.Sprintf("signature: %d of %d required signers (keys: %s)%s",
			len(signers), threshold, strings.Join(s.Keys, ", "), e.inactiveNote(KindSignature, "", s.Keys)))
	}
}

func (e *evaluation) checkAttestation(a *AttestationRequirement) {
	var problems []string
	for _, ev := range e.evidence {
		if ev.Kind != KindAttestation || ev.PredicateType != a.PredicateType || !e.counts(ev.KeyID, a.Keys) {
			continue
		}
		problem := checkPredicate(a, ev)
		if problem == "" {
			e.use(ev.Digest)
			return
		}
		if !slices.Contains(problems, problem) {
			problems = append(problems, problem)
		}
	}
	from := "key " + a.Keys[0] // Validate ensured keys are listed
	if len(a.Keys) > 1 {
		from = "one of keys " + strings.Join(a.Keys, ", ")
	}
	msg := fmt.Sprintf("attestation %s from %s", a.PredicateType, from)
	if len(problems) > 0 {
		msg += ": " + strings.Join(problems, "; ")
	}
	e.unmet = append(e.unmet, msg+e.inactiveNote(KindAttestation, a.PredicateType, a.Keys))
}

// checkPredicate returns why a verified attestation does not satisfy the
// requirement, or "" when it does. Predicate types without checks here are
// satisfied by being present and verified.
func checkPredicate(a *AttestationRequirement, ev VerifiedEvidence) string {
	switch a.PredicateType {
	case PredicateTestResult:
		tr, err := ParseTestResult(ev.Predicate)
		if err != nil {
			return fmt.Sprintf("unreadable test result from key %s: %v", ev.KeyID, err)
		}
		if tr.Result != TestResultPassed {
			return fmt.Sprintf("test result %q from key %s, want %s", tr.Result, ev.KeyID, TestResultPassed)
		}
	case PredicateSLSAProvenanceV1, PredicateSLSAProvenanceV02:
		if len(a.BuilderIDs) == 0 {
			return ""
		}
		builder, err := SLSABuilderID(a.PredicateType, ev.Predicate)
		if err != nil {
			return fmt.Sprintf("unreadable provenance from key %s: %v", ev.KeyID, err)
		}
		if !slices.Contains(a.BuilderIDs, builder) {
			return fmt.Sprintf("builder %s not allowed", builder)
		}
	}
	return ""
}

// TestResult is the part of the in-toto test-result predicate dml reads.
type TestResult struct {
	Result      string   `json:"result"`
	PassedTests []string `json:"passedTests"`
	FailedTests []string `json:"failedTests"`
}

// ParseTestResult reads a test-result predicate; one without a result is
// an error.
func ParseTestResult(predicate json.RawMessage) (TestResult, error) {
	var tr TestResult
	if err := json.Unmarshal(predicate, &tr); err != nil {
		return tr, err
	}
	if tr.Result == "" {
		return tr, fmt.Errorf("no result")
	}
	return tr, nil
}

// SLSABuilderID is the builder ID of a SLSA provenance predicate of
// either version (runDetails.builder.id in v1, builder.id in v0.2).
func SLSABuilderID(predicateType string, predicate json.RawMessage) (string, error) {
	var p struct {
		RunDetails struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
		} `json:"runDetails"`
		Builder struct { // v0.2
			ID string `json:"id"`
		} `json:"builder"`
	}
	if err := json.Unmarshal(predicate, &p); err != nil {
		return "", err
	}
	id := p.RunDetails.Builder.ID
	if predicateType == PredicateSLSAProvenanceV02 {
		id = p.Builder.ID
	}
	if id == "" {
		return "", fmt.Errorf("no builder id")
	}
	return id, nil
}
