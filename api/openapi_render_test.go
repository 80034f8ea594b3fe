package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// renderAPIReference renders docs/api.md from the OpenAPI document alone:
// one section per operation (tag by tag, then path and method), then the
// schemas.
func renderAPIReference(docJSON []byte) ([]byte, error) {
	var doc struct {
		Info struct {
			Description string `json:"description"`
		} `json:"info"`
		Tags []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"tags"`
		Paths      map[string]map[string]operationJSON `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(docJSON, &doc); err != nil {
		return nil, err
	}
	type entry struct {
		method, path string
		op           operationJSON
	}
	byTag := map[string][]entry{}
	for path, item := range doc.Paths {
		for method, op := range item {
			for _, tag := range op.Tags {
				byTag[tag] = append(byTag[tag], entry{strings.ToUpper(method), path, op})
			}
		}
	}
	methodOrder := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	var b strings.Builder
	b.WriteString("<!-- Generated from api/openapi.json by `go generate ./api`; do not edit. -->\n\n")
	b.WriteString("# REST API reference (/api/v1)\n\n")
	b.WriteString(doc.Info.Description + "\n\n")
	b.WriteString("The machine-readable form is the OpenAPI 3.1 document the server serves at `GET /api/v1/openapi.json` " +
		"(no token needed), also in the repository as [api/openapi.json](../api/openapi.json). Authenticate with " +
		"`Authorization: Bearer <token>`; the roles of each operation are those of the access matrix ([security.md](security.md)). " +
		"How this page is made and how to describe a new route: [Keeping this reference current](#keeping-this-reference-current).\n\n")
	b.WriteString("## Operations\n\n")
	for _, tag := range doc.Tags {
		entries := byTag[tag.Name]
		if len(entries) == 0 {
			continue
		}
		slices.SortFunc(entries, func(x, y entry) int {
			if c := strings.Compare(x.path, y.path); c != 0 {
				return c
			}
			return slices.Index(methodOrder, x.method) - slices.Index(methodOrder, y.method)
		})
		fmt.Fprintf(&b, "- **%s** — %s ", tag.Name, tag.Description)
		links := make([]string, len(entries))
		for i, e := range entries {
			links[i] = fmt.Sprintf("[`%s %s`](#%s)", e.method, e.path, e.op.OperationID)
		}
		b.WriteString(strings.Join(links, ", ") + "\n")
	}
	b.WriteString("\n")
	for _, tag := range doc.Tags {
		entries := byTag[tag.Name]
		if len(entries) == 0 {
			continue
		}
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", tag.Name, tag.Description)
		for _, e := range entries {
			renderOperation(&b, e.method, e.path, e.op)
		}
	}
	b.WriteString("## Schemas\n\n")
	b.WriteString("Reflected from the Go types the server encodes and decodes. In an answer, a field marked \"always sent\" is " +
		"present in every answer (it may still be empty or, where its type says so, null); the others are left out when empty. " +
		"Request bodies (the `…Request` and `…Update` schemas, and the `…Input` variants of schemas answers use too) require " +
		"no field: one left out is empty, or left alone where its description says so; an unknown field is refused " +
		"(400 MALFORMED).\n\n")
	names := make([]string, 0, len(doc.Components.Schemas))
	for name := range doc.Components.Schemas {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		renderSchema(&b, name, doc.Components.Schemas[name])
	}
	b.WriteString(referenceMaintenance)
	return []byte(b.String()), nil
}

type operationJSON struct {
	OperationID string `json:"operationId"`
	Summary     string `json:"summary"`
	Description string `json:"description"`
	Tags        []string
	Public      bool `json:"x-dml-public"`
	Roles       []struct {
		Role string `json:"role"`
		Note string `json:"note"`
	} `json:"x-dml-roles"`
	Parameters []struct {
		Name        string         `json:"name"`
		In          string         `json:"in"`
		Description string         `json:"description"`
		Required    bool           `json:"required"`
		Schema      map[string]any `json:"schema"`
	} `json:"parameters"`
	RequestBody *struct {
		Description string `json:"description"`
		Required    bool   `json:"required"`
		Content     map[string]struct {
			Schema  map[string]any  `json:"schema"`
			Example json.RawMessage `json:"example"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Description string   `json:"description"`
		Codes       []string `json:"x-dml-codes"`
		Content     map[string]struct {
			Schema     map[string]any `json:"schema"`
			LineSchema map[string]any `json:"x-dml-line-schema"`
		} `json:"content"`
		Headers map[string]struct {
			Description string `json:"description"`
		} `json:"headers"`
	} `json:"responses"`
}

func renderOperation(b *strings.Builder, method, path string, op operationJSON) {
	fmt.Fprintf(b, "<a id=\"%s\"></a>\n\n### %s\n\n`%s %s` · operation `%s`\n\n", op.OperationID, op.Summary, method, path, op.OperationID)
	if op.Public {
		b.WriteString("**Roles:** public, no token needed.\n\n")
	} else {
		roles := make([]string, len(op.Roles))
		for i, r := range op.Roles {
			roles[i] = r.Role
			if r.Note != "" {
				roles[i] += " (" + r.Note + ")"
			}
		}
		b.WriteString("**Roles:** " + strings.Join(roles, ", ") + ".\n\n")
	}
	if op.Description != "" {
		b.WriteString(op.Description + "\n\n")
	}
	if len(op.Parameters) > 0 {
		b.WriteString("| parameter | in | type | required | description |\n|---|---|---|---|---|\n")
		for _, p := range op.Parameters {
			req := ""
			if p.Required {
				req = "yes"
			}
			fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", p.Name, p.In, typeText(p.Schema), req, cell(p.Description))
		}
		b.WriteString("\n")
	}
	if rb := op.RequestBody; rb != nil {
		for _, ct := range sortedKeys(rb.Content) {
			m := rb.Content[ct]
			req := "optional"
			if rb.Required {
				req = "required"
			}
			fmt.Fprintf(b, "**Request body** (`%s`, %s): %s — %s\n\n", ct, req, typeText(m.Schema), rb.Description)
			if len(m.Example) > 0 {
				var pretty bytes.Buffer
				_ = json.Indent(&pretty, m.Example, "", "  ")
				fmt.Fprintf(b, "```json\n%s\n```\n\n", pretty.String())
			}
		}
	}
	b.WriteString("| status | body | description |\n|---|---|---|\n")
	for _, status := range sortedKeys(op.Responses) {
		r := op.Responses[status]
		var bodies []string
		for _, ct := range sortedKeys(r.Content) {
			m := r.Content[ct]
			switch {
			case len(r.Codes) > 0:
				details := errorDetailTypes(m.Schema)
				codes := make([]string, len(r.Codes))
				for i, c := range r.Codes {
					codes[i] = "`" + c + "`"
					if d, ok := details[c]; ok {
						codes[i] += " (detail " + d + ")"
					}
				}
				bodies = append(bodies, "[error](#schema-ErrorBody): "+strings.Join(codes, ", "))
			case m.LineSchema != nil:
				bodies = append(bodies, fmt.Sprintf("`%s`, one %s per line", ct, typeText(m.LineSchema)))
			case m.Schema["type"] == "string" && ct != "application/json":
				bodies = append(bodies, "`"+ct+"`")
			default:
				bodies = append(bodies, fmt.Sprintf("%s (`%s`)", typeText(m.Schema), ct))
			}
		}
		if len(bodies) == 0 && len(r.Codes) > 0 {
			bodies = append(bodies, "codes "+strings.Join(r.Codes, ", ")+" (no body: HEAD)")
		}
		desc := r.Description
		if len(r.Codes) > 0 {
			desc, _, _ = strings.Cut(desc, ":")
		}
		for _, h := range sortedKeys(r.Headers) {
			desc += fmt.Sprintf(" `%s`: %s", h, r.Headers[h].Description)
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", status, strings.Join(bodies, "; "), cell(desc))
	}
	b.WriteString("\n")
}

func renderSchema(b *strings.Builder, name string, s map[string]any) {
	fmt.Fprintf(b, "<a id=\"schema-%s\"></a>\n\n#### %s\n\n", name, name)
	if d, ok := s["description"].(string); ok && d != "" {
		b.WriteString(d + "\n\n")
	}
	props, _ := s["properties"].(map[string]any)
	if len(props) == 0 {
		fmt.Fprintf(b, "%s.\n\n", typeText(s))
		return
	}
	required := map[string]bool{}
	if rs, ok := s["required"].([]any); ok {
		for _, r := range rs {
			required[r.(string)] = true
		}
	}
	b.WriteString("| field | type | always sent | description |\n|---|---|---|---|\n")
	for _, field := range sortedKeys(props) {
		p, _ := props[field].(map[string]any)
		req := ""
		if required[field] {
			req = "yes"
		}
		d, _ := p["description"].(string)
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", field, typeText(p), req, cell(d))
	}
	b.WriteString("\n")
}

// errorDetailTypes reads, from an error answer's schema, the detail type
// of each code that has one.
func errorDetailTypes(s map[string]any) map[string]string {
	out := map[string]string{}
	props, _ := s["properties"].(map[string]any)
	errs, _ := props["errors"].(map[string]any)
	items, _ := errs["items"].(map[string]any)
	all, _ := items["allOf"].([]any)
	for _, c := range all {
		cond, _ := c.(map[string]any)
		ifProps, _ := cond["if"].(map[string]any)["properties"].(map[string]any)
		code, _ := ifProps["code"].(map[string]any)["const"].(string)
		thenProps, _ := cond["then"].(map[string]any)["properties"].(map[string]any)
		if detail, ok := thenProps["detail"].(map[string]any); ok && code != "" {
			out[code] = typeText(detail)
		}
	}
	return out
}

// typeText names a schema's type in a few words, linking components.
func typeText(s map[string]any) string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		return fmt.Sprintf("[%s](#schema-%s)", name, name)
	}
	if alts, ok := s["anyOf"].([]any); ok {
		parts := make([]string, len(alts))
		for i, a := range alts {
			parts[i] = typeText(a.(map[string]any))
		}
		return strings.Join(parts, " or ")
	}
	if c, ok := s["const"]; ok {
		b, _ := json.Marshal(c)
		return "`" + string(b) + "`"
	}
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, x.(string))
		}
	default:
		return "any JSON"
	}
	for i, t := range types {
		switch t {
		case "array":
			if items, ok := s["items"].(map[string]any); ok {
				types[i] = "array of " + typeText(items)
			}
		case "object":
			if ap, ok := s["additionalProperties"].(map[string]any); ok {
				types[i] = "map of " + typeText(ap)
			}
		case "string":
			if f, ok := s["format"].(string); ok {
				types[i] = "string (" + f + ")"
			} else if e, ok := s["contentEncoding"].(string); ok {
				types[i] = "string (" + e + ")"
			}
		}
	}
	return strings.Join(types, " or ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// cell makes text safe in a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

const referenceMaintenance = `## Keeping this reference current

This page and api/openapi.json are generated; do not edit them. ` + "`go generate ./api`" + ` writes both from:

- the access matrix (api/authz.go): every route, its operation name and the roles that may call it;
- the operations table (api/openapi_ops_test.go): per operation, its summary, parameters, request body, answers and error codes;
- the Go types of the bodies (api/wire, and the provenance and audit log documents), reflected as encoding/json reads them,
  with their doc comments as descriptions.

To describe a new route under /api/v1: add its row to the access matrix, add an entry under its operation name to the
operations table, and run ` + "`go generate ./api`" + `. A new field of a wire type needs only ` + "`go generate ./api`" + `; a new
error code a route answers goes into that route's Errors.

Tests keep it honest (api/openapi_test.go, api/openapi_gen_test.go):

- TestOpenAPIDocumentCurrent and TestAPIReferenceCurrent fail when this page or api/openapi.json is stale;
- TestOpenAPICoversRoutes fails when a route the router serves under /api/v1 is missing from the document, or the
  document describes one it does not serve;
- TestOpenAPIAnswersMatch drives a server through the release lifecycle and calls every operation, then checks every
  answer against the document: its status must be described, its body must validate against the schema (JSON Schema
  2020-12, formats asserted), an error's code must be one the operation lists;
- TestOpenAPIExamples validates every example in the document against its schema.
`
