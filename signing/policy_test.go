package signing

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const examplePolicyJSON = `{"rules":[{"match":"payments/*","signatures":{"keys":["ci"],"threshold":1},
  "attestations":[{"predicateType":"https://in-toto.io/attestation/test-result/v0.1","keys":["ci"]},
                  {"predicateType":"https://slsa.dev/provenance/v1","keys":["ci"],"builderIds":["https://github.com/org/repo/.github/workflows/build.yml@refs/heads/main"]}]}]}`

const examplePolicyYAML = `
rules:
  - match: payments/*
    signatures:
      keys: [ci]
      threshold: 1
    attestations:
      - predicateType: https://in-toto.io/attestation/test-result/v0.1
        keys: [ci]
      - predicateType: https://slsa.dev/provenance/v1
        keys: [ci]
        builderIds:
          - https://github.com/org/repo/.github/workflows/build.yml@refs/heads/main
`

func TestParsePolicy(t *testing.T) {
	fromJSON, err := ParsePolicy([]byte(examplePolicyJSON))
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := ParsePolicy([]byte(examplePolicyYAML))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Fatalf("JSON and YAML differ:\n%+v\n%+v", fromJSON, fromYAML)
	}
	want := &Policy{Rules: []Rule{{
		Match:      "payments/*",
		Signatures: &SignatureRequirement{Keys: []string{"ci"}, Threshold: 1},
		Attestations: []AttestationRequirement{
			{PredicateType: PredicateTestResult, Keys: []string{"ci"}},
			{PredicateType: PredicateSLSAProvenanceV1, Keys: []string{"ci"}, BuilderIDs: []string{"https://github.com/org/repo/.github/workflows/build.yml@refs/heads/main"}},
		},
	}}}
	if !reflect.DeepEqual(fromJSON, want) {
		t.Fatalf("policy = %+v", fromJSON)
	}
}

// TestParsePolicyRefusesAmbiguity: a policy that two readers could take
// differently is refused, in JSON and in YAML. Before, the last of two
// equal keys won (JSON and YAML), keys differing only in case were merged
// by the decoder, and a second JSON value or YAML document was ignored.
func TestParsePolicyRefusesAmbiguity(t *testing.T) {
	rule := `{"match":"payments/*","signatures":{"keys":["ci"]}}`
	for _, tc := range []struct{ name, doc string }{
		{"JSON duplicate key", `{"rules":[` + rule + `],"rules":[]}`},
		{"JSON duplicate key in a rule", `{"rules":[{"match":"payments/*","signatures":{"keys":["ci"]},"match":"*"}]}`},
		{"JSON duplicate by case", `{"rules":[` + rule + `],"RULES":[]}`},
		{"JSON duplicate by escape", `{"rules":[` + rule + `],"rul\u0065s":[]}`},
		{"JSON second value", `{"rules":[` + rule + `]} {"rules":[]}`},
		{"JSON trailing garbage", `{"rules":[` + rule + `]} x`},
		{"JSON too deep", `{"rules":[` + rule + `],"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`},
		{"YAML duplicate key", "rules: []\nrules:\n  - match: payments/*\n    signatures: {keys: [ci]}\n"},
		{"YAML duplicate key in a rule", "rules:\n  - match: payments/*\n    match: '*'\n    signatures: {keys: [ci]}\n"},
		{"YAML duplicate by case", "rules: []\nRules:\n  - match: payments/*\n    signatures: {keys: [ci]}\n"},
		{"YAML second document", "rules:\n  - match: payments/*\n    signatures: {keys: [ci]}\n---\nrules: []\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tc.doc))
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("ParsePolicy(%q) = %+v, %v; want ErrInvalidPolicy", tc.doc, p, err)
			}
		})
	}
	// Flow-style YAML, which is not JSON, is still YAML.
	if _, err := ParsePolicy([]byte("{rules: [{match: payments/*, signatures: {keys: [ci]}}]}")); err != nil {
		t.Errorf("flow-style YAML: %v", err)
	}
}

func TestPolicyValidation(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   string // in the error; "" means valid
	}{
		{"empty policy", `{"rules":[]}`, ""},
		{"unknown predicate type", `{"rules":[{"match":"a","attestations":[{"predicateType":"https://example.com/custom/v1","keys":["ci"]}]}]}`, ""},
		{"threshold defaults", `{"rules":[{"match":"a","signatures":{"keys":["ci","release"]}}]}`, ""},
		{"empty match", `{"rules":[{"match":"","signatures":{"keys":["ci"]}}]}`, "match is empty"},
		{"negative threshold", `{"rules":[{"match":"a","signatures":{"keys":["ci"],"threshold":-1}}]}`, "negative"},
		{"threshold above keys", `{"rules":[{"match":"a","signatures":{"keys":["ci"],"threshold":2}}]}`, "threshold 2 exceeds the 1 keys"},
		{"threshold without keys", `{"rules":[{"match":"a","signatures":{"threshold":1}}]}`, "exceeds the 0 keys"},
		{"duplicate match", `{"rules":[{"match":"a/*","signatures":{"keys":["ci"]}},{"match":"a/*","signatures":{"keys":["x"]}}]}`, "duplicate match"},
		{"unknown field", `{"rules":[{"match":"a","signatures":{"keys":["ci"],"treshold":2}}]}`, "treshold"},
		{"bad glob", `{"rules":[{"match":"a/[","signatures":{"keys":["ci"]}}]}`, "syntax error"},
		{"partial **", `{"rules":[{"match":"a/b**","signatures":{"keys":["ci"]}}]}`, "whole segment"},
		{"empty segment", `{"rules":[{"match":"a//b","signatures":{"keys":["ci"]}}]}`, "empty segment"},
		{"requires nothing", `{"rules":[{"match":"a"}]}`, "requires no signature and no attestation"},
		{"empty predicate type", `{"rules":[{"match":"a","attestations":[{"keys":["ci"]}]}]}`, "predicateType is empty"},
		{"attestation without keys", `{"rules":[{"match":"a","attestations":[{"predicateType":"x"}]}]}`, "keys is empty"},
		{"builderIds on test result", `{"rules":[{"match":"a","attestations":[{"predicateType":"https://in-toto.io/attestation/test-result/v0.1","keys":["ci"],"builderIds":["b"]}]}]}`, "builderIds only apply"},
		{"bad key ID", `{"rules":[{"match":"a","signatures":{"keys":["c i"]}}]}`, "key ID"},
		{"duplicate key", `{"rules":[{"match":"a","signatures":{"keys":["ci","ci"],"threshold":2}}]}`, "listed twice"},
		{"not JSON or YAML", `{"rules": [`, "invalid trust policy"},
		// A name never holds a control character, so a pattern with one
		// matches nothing; YAML cannot even write it (FuzzParsePolicy).
		{"control character in match", "{\"rules\":[{\"match\":\"a\\u007f\",\"signatures\":{\"keys\":[\"ci\"]}}]}", "control character"},
		{"control character in predicate type", "{\"rules\":[{\"match\":\"a\",\"attestations\":[{\"predicateType\":\"x\\u0000\",\"keys\":[\"ci\"]}]}]}", "control character"},
		{"control character in builder ID", "{\"rules\":[{\"match\":\"a\",\"attestations\":[{\"predicateType\":\"https://slsa.dev/provenance/v1\",\"keys\":[\"ci\"],\"builderIds\":[\"b\\n\"]}]}]}", "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.policy))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("valid policy refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid policy accepted, want error with %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidPolicy with %q", err, tt.want)
			}
		})
	}
}

func TestRuleFor(t *testing.T) {
	rule := func(match string) Rule {
		return Rule{Match: match, Signatures: &SignatureRequirement{Keys: []string{"ci"}}}
	}
	p := &Policy{Rules: []Rule{
		rule("**"),
		rule("*/api"),
		rule("payments/**"),
		rule("payments/*"),
		rule("payments/api-*"),
		rule("payments/api"),
		rule("tools/*/cli"),
		rule("lib?"),
	}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, want string }{
		{"payments/api", "payments/api"},           // exact name first
		{"payments/api-gateway", "payments/api-*"}, // longest literal prefix
		{"payments/web", "payments/*"},             // * beats ** on equal prefix
		{"payments/web/v2", "payments/**"},         // ** spans segments
		{"payments", "payments/**"},                // ** may match no segment
		{"orders/api", "*/api"},                    // "*/api" beats "**" ("" prefix each, no **)
		{"orders/web", "**"},                       // catch-all
		{"tools/build/cli", "tools/*/cli"},         // * stays in its segment
		{"tools/build/x/cli", "**"},                // ... so this is not tools/*/cli
		{"libx", "lib?"},                           // ? is one character
		{"paymentsx/api", "*/api"},                 // prefix is by segment, not by string
		{"payments/api/extra", "payments/**"},      // exact name does not cover children
		{"PAYMENTS/api", "*/api"},                  // case matters
		{"payments-api", "**"},
	}
	for _, tt := range tests {
		r := p.RuleFor(tt.name)
		if r == nil || r.Match != tt.want {
			got := "<nil>"
			if r != nil {
				got = r.Match
			}
			t.Errorf("RuleFor(%q) = %s, want %s", tt.name, got, tt.want)
		}
	}
	if r := (&Policy{Rules: []Rule{rule("payments/*")}}).RuleFor("orders/api"); r != nil {
		t.Errorf("RuleFor without a match = %s, want nil", r.Match)
	}
}

// FuzzParsePolicy: a policy that parses validates, and its canonical JSON
// is a fixed point: format(parse(format(parse(x)))) == format(parse(x)),
// through JSON and through YAML alike.
func FuzzParsePolicy(f *testing.F) {
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := ParsePolicy(doc)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("ParsePolicy(%q) = %v, not ErrInvalidPolicy", doc, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePolicy(%q) accepted an invalid policy: %v", doc, err)
		}
		canonical, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		asYAML, err := yaml.JSONToYAML(canonical)
		if err != nil {
			t.Fatal(err)
		}
		for _, again := range [][]byte{canonical, asYAML} {
			q, err := ParsePolicy(again)
			if err != nil {
				t.Fatalf("ParsePolicy(%q) = %s, which does not parse again: %v", doc, again, err)
			}
			if b, _ := json.Marshal(q); !bytes.Equal(b, canonical) {
				t.Fatalf("ParsePolicy(%q) = %s, but %q parses to %s", doc, canonical, again, b)
			}
		}
	})
}
