package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/access"
)

//go:generate go test -run ^(TestOpenAPIDocumentCurrent|TestAPIReferenceCurrent)$ -update-openapi .

var updateOpenAPI = flag.Bool("update-openapi", false, "rewrite api/openapi.json and docs/api.md from the access matrix, the operations table and the wire types")

const (
	openAPIFile  = "openapi.json"
	apiReference = "../docs/api.md"
)

// opDoc describes one operation beyond what the access matrix says.
type opDoc struct {
	Summary, Description string
	// Query parameters and request headers.
	Query, Headers []paramDoc
	Body           *bodyDoc
	// Answers are the successful answers.
	Answers []answerDoc
	// Errors are the codes (errorTable's) the operation can answer, beyond
	// commonErrors.
	Errors []string
}

type paramDoc struct {
	Name, Type, Description string
	Required                bool
	// Repeat: the parameter may be given several times.
	Repeat bool
}

type bodyDoc struct {
	Content, Description string
	// Type is reflected for the schema; Any is any JSON value; Binary is
	// bytes.
	Type        reflect.Type
	Any, Binary bool
	Optional    bool
	// Example is a JSON example of the body, validated by the test.
	Example string
}

func jsonBody[T any](description string) *bodyDoc {
	return &bodyDoc{Content: "application/json", Description: description, Type: reflect.TypeFor[T]()}
}

func (b *bodyDoc) optional() *bodyDoc { b.Optional = true; return b }

func (b *bodyDoc) example(v string) *bodyDoc { b.Example = v; return b }

type answerDoc struct {
	Status      int
	Description string
	// Content is the media type ("" for no body); Type the JSON body's Go
	// type; Line the Go type of each line of an NDJSON body.
	Content    string
	Type, Line reflect.Type
	Headers    [][2]string
}

func jsonAnswer[T any](status int, description string) answerDoc {
	return answerDoc{Status: status, Description: description, Content: "application/json", Type: reflect.TypeFor[T]()}
}

func ndjsonAnswer[T any](status int, description string) answerDoc {
	return answerDoc{Status: status, Description: description, Content: "application/x-ndjson", Line: reflect.TypeFor[T]()}
}

func raw(status int, content, description string) answerDoc {
	return answerDoc{Status: status, Description: description, Content: content}
}

func noContent(description string) answerDoc {
	return answerDoc{Status: http.StatusNoContent, Description: description}
}

func headAnswer(status int, description string) answerDoc {
	return answerDoc{Status: status, Description: description}
}

func (a answerDoc) withHeader(name, description string) answerDoc {
	a.Headers = append(slices.Clone(a.Headers), [2]string{name, description})
	return a
}

// restCodeStatus maps every REST code of errorTable to its status; a code
// with two statuses is an error.
func restCodeStatus() (map[string]int, error) {
	out := map[string]int{}
	for _, r := range errorTable {
		if r.code == "" {
			continue
		}
		if s, ok := out[r.code]; ok && s != r.status {
			return nil, fmt.Errorf("error code %s has two statuses, %d and %d", r.code, s, r.status)
		}
		out[r.code] = r.status
	}
	return out, nil
}

// commonErrors are the codes every operation like rule can answer: 401
// without a valid token, 403 when the matrix or the domain refuses some
// callers, 500; for a request body, 400 MALFORMED (JSON), 408 (too slow)
// and 413 (too large).
func commonErrors(rule accessRule, body *bodyDoc) []string {
	var out []string
	if !rule.Public {
		out = append(out, "UNAUTHORIZED")
		narrowed := len(rule.Grants) < len(access.Roles) || slices.ContainsFunc(rule.Grants, func(g grant) bool { return g.Note != "" })
		if narrowed {
			out = append(out, "DENIED")
		}
	}
	if body != nil {
		if body.Content == "application/json" {
			out = append(out, "MALFORMED")
		}
		out = append(out, "REQUEST_TIMEOUT", "TOO_LARGE")
	}
	return append(out, "INTERNAL")
}

// tagOf groups operations in the document and the reference page.
func tagOf(path string) string {
	rest := strings.TrimPrefix(path, v1Prefix+"/")
	first, _, _ := strings.Cut(rest, "/")
	switch first {
	case "artifacts":
		if strings.Contains(rest, "/signatures") || strings.Contains(rest, "/attestations") || strings.Contains(rest, "/evidence") {
			return "evidence"
		}
		return "artifacts"
	case "keys", "trust":
		return "trust"
	case "whoami", "tokens":
		return "tokens"
	case "settings":
		return "settings"
	case "quotas", "retention":
		return "retention"
	case "events", "webhooks":
		return "events"
	case "openapi.json":
		return "meta"
	}
	return first
}

var tagDescriptions = [][2]string{
	{"meta", "The API's own description."},
	{"artifacts", "Artifact versions: push, read, download, retire, provenance."},
	{"evidence", "Signatures and attestations of an artifact version, which admit it under the trust policy."},
	{"trust", "Trusted keys, the trust policy, Sigstore trusted roots and signer identities."},
	{"releases", "The ITIL release lifecycle: plan, approvals, sealed manifest, deployments, review."},
	{"settings", "Default gate quorums and the change policy."},
	{"audit", "The Merkle audit log, its proofs, and the access log."},
	{"admin", "Maintenance of the blob store."},
	{"tokens", "API tokens."},
	{"retention", "Retention policies and quotas."},
	{"events", "The event stream and webhooks."},
	{"sso", "Single sign-on."},
}

// pathParamDescription describes a path parameter of path.
func pathParamDescription(path, name string) string {
	switch {
	case strings.HasPrefix(path, v1Prefix+"/artifacts/"):
		switch name {
		case "name":
			return "The artifact's name. It may hold slashes (`payments/api`), sent as they are, not escaped."
		case "version":
			return "The version."
		case "digest":
			return "The evidence's digest (`sha256:…`)."
		}
	case strings.HasPrefix(path, v1Prefix+"/releases/"):
		if name == "name" {
			return "The release's name."
		}
		return "The deployment's ID."
	case strings.HasPrefix(path, v1Prefix+"/quotas/"):
		return "The quota's name prefix. It may hold slashes (`team/`), sent as they are, not escaped."
	case strings.HasPrefix(path, v1Prefix+"/webhooks/"):
		if name == "delivery" {
			return "The delivery's number."
		}
		return "The webhook's ID."
	case strings.HasPrefix(path, v1Prefix+"/tokens/"):
		return "The token's ID (not its secret)."
	case strings.HasPrefix(path, v1Prefix+"/trust/keys/"):
		return "The key's ID."
	case strings.HasPrefix(path, v1Prefix+"/trust/roots/"):
		return "The trusted root's ID."
	case strings.HasPrefix(path, v1Prefix+"/trust/identities/"):
		return "The identity's ID."
	case strings.HasPrefix(path, v1Prefix+"/retention/policies/"):
		return "The policy's ID."
	}
	return ""
}

// buildOpenAPI writes the document: the /api/v1 rows of the access matrix,
// described by operations, with schemas reflected from their Go types.
func buildOpenAPI(root string) ([]byte, error) {
	codeStatus, err := restCodeStatus()
	if err != nil {
		return nil, err
	}
	docs := newGoDocs(root)
	answers := newSchemaReflector(docs)
	var errs []error
	described := map[string]bool{}
	paths := map[string]map[string]any{}
	type pending struct {
		op   map[string]any
		body *bodyDoc
	}
	var bodies []pending
	for _, rule := range accessMatrix {
		if !strings.HasPrefix(rule.Path, v1Prefix+"/") {
			continue
		}
		d, ok := operations[rule.Operation]
		if !ok {
			errs = append(errs, fmt.Errorf("%s %s (operation %s) has no entry in operations (openapi_ops_test.go)", rule.Method, rule.Path, rule.Operation))
			continue
		}
		described[rule.Operation] = true
		op := map[string]any{"operationId": rule.Operation, "summary": d.Summary, "tags": []string{tagOf(rule.Path)}}
		if d.Description != "" {
			op["description"] = d.Description
		}
		if rule.Public {
			op["security"] = []any{}
			op["x-dml-public"] = true
		} else {
			roles := make([]any, len(rule.Grants))
			for i, g := range rule.Grants {
				r := map[string]any{"role": string(g.Role)}
				if g.Note != "" {
					r["note"] = g.Note
				}
				roles[i] = r
			}
			op["x-dml-roles"] = roles
		}
		var params []any
		for _, seg := range strings.Split(rule.Path, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				name = strings.TrimSuffix(name, "}")
				params = append(params, map[string]any{"name": name, "in": "path", "required": true,
					"description": pathParamDescription(rule.Path, name), "schema": map[string]any{"type": "string"}})
			}
		}
		for _, q := range d.Query {
			params = append(params, parameter("query", q))
		}
		for _, h := range d.Headers {
			params = append(params, parameter("header", h))
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if d.Body != nil {
			bodies = append(bodies, pending{op, d.Body})
		}
		head := rule.Method == http.MethodHead
		responses := map[string]any{}
		for _, a := range d.Answers {
			key := strconv.Itoa(a.Status)
			if _, dup := responses[key]; dup {
				errs = append(errs, fmt.Errorf("%s: two answers with status %s", rule.Operation, key))
			}
			resp := map[string]any{"description": a.Description}
			if a.Content != "" && !head {
				media := map[string]any{}
				switch {
				case a.Type != nil:
					media["schema"] = answers.schema(a.Type)
				case a.Line != nil:
					media["schema"] = map[string]any{"type": "string", "description": "Newline-delimited JSON: one value of x-dml-line-schema per line."}
					media["x-dml-line-schema"] = answers.schema(a.Line)
				case a.Content == "application/json":
					media["schema"] = map[string]any{"type": "object"}
				default:
					media["schema"] = map[string]any{"type": "string"}
				}
				resp["content"] = map[string]any{a.Content: media}
			}
			if len(a.Headers) > 0 {
				hs := map[string]any{}
				for _, h := range a.Headers {
					hs[h[0]] = map[string]any{"description": h[1], "schema": map[string]any{"type": "string"}}
				}
				resp["headers"] = hs
			}
			responses[key] = resp
		}
		byStatus := map[int][]string{}
		for _, code := range append(commonErrors(rule, d.Body), d.Errors...) {
			status, ok := codeStatus[code]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: error code %s is not in errorTable (errors.go)", rule.Operation, code))
				continue
			}
			if !slices.Contains(byStatus[status], code) {
				byStatus[status] = append(byStatus[status], code)
			}
		}
		for status, codes := range byStatus {
			slices.Sort(codes)
			key := strconv.Itoa(status)
			if _, dup := responses[key]; dup {
				errs = append(errs, fmt.Errorf("%s: status %s is both an answer and an error", rule.Operation, key))
			}
			resp := map[string]any{"description": http.StatusText(status) + ": " + strings.Join(codes, ", ") + ".", "x-dml-codes": codes}
			if !head {
				// The item's code is one of the codes; a code's detail,
				// when errorDetails knows its shape, is that shape.
				item := map[string]any{"properties": map[string]any{"code": map[string]any{"enum": codes}}}
				var details []any
				for _, code := range codes {
					if t, ok := errorDetails[code]; ok {
						details = append(details, map[string]any{
							"if":   map[string]any{"properties": map[string]any{"code": map[string]any{"const": code}}},
							"then": map[string]any{"properties": map[string]any{"detail": answers.schema(t)}},
						})
					}
				}
				if len(details) > 0 {
					item["allOf"] = details
				}
				resp["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{
					"$ref":       "#/components/schemas/ErrorBody",
					"properties": map[string]any{"errors": map[string]any{"items": item}},
				}}}
			}
			responses[key] = resp
		}
		op["responses"] = responses
		item := paths[rule.Path]
		if item == nil {
			item = map[string]any{}
			paths[rule.Path] = item
		}
		item[strings.ToLower(rule.Method)] = op
	}
	for name := range operations {
		if !described[name] {
			errs = append(errs, fmt.Errorf("operations has %s, which no /api/v1 row of the access matrix names", name))
		}
	}
	answers.schema(reflect.TypeFor[wire.ErrorBody]())
	// Request bodies second: their types get their own components
	// (nothing required), named apart from the answers' where both use
	// a type.
	requests := newSchemaReflector(docs)
	requests.requests, requests.answers = true, map[string]bool{}
	for name := range answers.defs {
		requests.answers[name] = true
	}
	for _, p := range bodies {
		b := p.body
		media := map[string]any{}
		switch {
		case b.Type != nil:
			media["schema"] = requests.schema(b.Type)
		case b.Binary:
			media["schema"] = map[string]any{"type": "string", "contentMediaType": "application/octet-stream"}
		default:
			media["schema"] = map[string]any{}
		}
		if b.Example != "" {
			media["example"] = json.RawMessage(b.Example)
		}
		p.op["requestBody"] = map[string]any{"description": b.Description, "required": !b.Optional, "content": map[string]any{b.Content: media}}
	}
	for _, r := range []*schemaReflector{answers, requests} {
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if docs.err != nil {
		errs = append(errs, docs.err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	schemas := map[string]any{"Digest": map[string]any{"type": "string", "pattern": digestPattern,
		"description": "A content digest, algorithm:hex (sha256:…).", "examples": []any{"sha256:" + strings.Repeat("ab", 32)}}}
	for _, r := range []*schemaReflector{answers, requests} {
		for name, s := range r.defs {
			if _, dup := schemas[name]; dup {
				return nil, fmt.Errorf("two schemas named %s", name)
			}
			schemas[name] = s
		}
	}
	tags := make([]any, len(tagDescriptions))
	for i, t := range tagDescriptions {
		tags[i] = map[string]any{"name": t[0], "description": t[1]}
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "dml REST API",
			"version": "v1",
			"description": "The REST API of dml, the Definitive Media Library, under /api/v1. Every answer that is an error has the " +
				"body {\"errors\":[{\"code\",\"message\",\"detail\"}]}; the codes each operation can answer are listed by status. " +
				"The OCI registry under /v2/ follows the OCI distribution specification and is not described here (docs/oci.md).",
		},
		"servers":  []any{map[string]any{"url": "/"}},
		"security": []any{map[string]any{"bearerToken": []any{}}},
		"tags":     tags,
		"paths":    paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{"bearerToken": map[string]any{"type": "http", "scheme": "bearer",
				"description": "An API token (dml token create) or a single sign-on session token (dml login), as `Authorization: Bearer <token>`."}},
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func parameter(in string, p paramDoc) map[string]any {
	s := map[string]any{"type": p.Type}
	if p.Repeat {
		s = map[string]any{"type": "array", "items": s}
	}
	out := map[string]any{"name": p.Name, "in": in, "description": p.Description, "schema": s}
	if p.Required {
		out["required"] = true
	}
	if p.Repeat {
		out["explode"] = true
	}
	return out
}

// TestOpenAPIDocumentCurrent fails when api/openapi.json is not what the
// access matrix, the operations table and the wire types make; `go
// generate ./api` rewrites it.
func TestOpenAPIDocumentCurrent(t *testing.T) {
	want, err := buildOpenAPI("..")
	if err != nil {
		t.Fatal(err)
	}
	current(t, openAPIFile, want)
}

// TestAPIReferenceCurrent fails when docs/api.md is not the rendering of
// the document; `go generate ./api` rewrites it.
func TestAPIReferenceCurrent(t *testing.T) {
	doc, err := buildOpenAPI("..")
	if err != nil {
		t.Fatal(err)
	}
	page, err := renderAPIReference(doc)
	if err != nil {
		t.Fatal(err)
	}
	current(t, apiReference, page)
}

// current compares a generated file with what is committed, or rewrites
// it under -update-openapi.
func current(t *testing.T, file string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(file)
	if err != nil && !*updateOpenAPI {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		return
	}
	if *updateOpenAPI {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is out of date with the access matrix, the operations table (api/openapi_ops_test.go) and the wire types; run `go generate ./api`", file)
}
