package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/internal/testkeys"
	"github.com/dmlproject/dml/internal/testserver"
	"github.com/gin-gonic/gin"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// openAPIURL is where the tests' schema compiler files the document; no
// request is ever made to it.
const openAPIURL = "https://dml.invalid/openapi.json"

// apiDocument is openapi.json as the server embeds it, read for tests:
// its operations, and a JSON Schema 2020-12 compiler over it that asserts
// formats (date-time and the like).
type apiDocument struct {
	raw      map[string]any
	ops      []*documentedOp
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

// documentedOp is one operation of the document.
type documentedOp struct {
	method, path string
	// match matches the request paths of the template; literal is how
	// much of it is literal (the most literal match wins).
	match   *regexp.Regexp
	literal int
	// pointer is the operation's JSON pointer in the document.
	pointer string
	op      map[string]any
}

func (o *documentedOp) key() string { return o.method + " " + o.path }

func loadAPIDocument(t *testing.T) *apiDocument {
	t.Helper()
	body := api.OpenAPIDocument()
	d := &apiDocument{compiled: map[string]*jsonschema.Schema{}}
	if err := json.Unmarshal(body, &d.raw); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	d.compiler = jsonschema.NewCompiler()
	d.compiler.DefaultDraft(jsonschema.Draft2020)
	d.compiler.AssertFormat()
	if err := d.compiler.AddResource(openAPIURL, inst); err != nil {
		t.Fatal(err)
	}
	paths, _ := d.raw["paths"].(map[string]any)
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			re, literal := templateRegexp(path)
			d.ops = append(d.ops, &documentedOp{method: strings.ToUpper(method), path: path, match: re, literal: literal,
				pointer: "/paths/" + pointerToken(path) + "/" + method, op: op.(map[string]any)})
		}
	}
	sort.Slice(d.ops, func(i, j int) bool { return d.ops[i].key() < d.ops[j].key() })
	return d
}

// templateRegexp matches the paths of a template. Artifact names and
// quota prefixes may hold slashes, as the router reads them.
func templateRegexp(path string) (*regexp.Regexp, int) {
	var b strings.Builder
	literal := 0
	b.WriteString("^")
	for i, seg := range strings.Split(path, "/") {
		if i > 0 {
			b.WriteString("/")
		}
		name, ok := strings.CutPrefix(seg, "{")
		switch {
		case !ok:
			b.WriteString(regexp.QuoteMeta(seg))
			literal += len(seg)
		case (name == "name}" && strings.HasPrefix(path, "/api/v1/artifacts/")) || name == "prefix}":
			b.WriteString("(.+)")
		default:
			b.WriteString("([^/]+)")
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String()), literal
}

func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// find is the operation that serves method on urlPath, or nil.
func (d *apiDocument) find(method, urlPath string) *documentedOp {
	var best *documentedOp
	for _, o := range d.ops {
		if o.method == method && o.match.MatchString(urlPath) && (best == nil || o.literal > best.literal) {
			best = o
		}
	}
	return best
}

// schema compiles the schema at the document's JSON pointer.
func (d *apiDocument) schema(t *testing.T, pointer string) *jsonschema.Schema {
	t.Helper()
	if s, ok := d.compiled[pointer]; ok {
		return s
	}
	s, err := d.compiler.Compile(openAPIURL + "#" + pointer)
	if err != nil {
		t.Fatalf("compiling the schema at %s: %v", pointer, err)
	}
	d.compiled[pointer] = s
	return s
}

// at returns the value at a JSON pointer of the document.
func (d *apiDocument) at(pointer string) any {
	var v any = d.raw
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[tok]
	}
	return v
}

// openAPIGaps compares the routes the router serves under /api/v1 (named
// as the access matrix names them) with the document's operations.
func openAPIGaps(routeKeys []string, doc *apiDocument) (undescribed, unserved []string) {
	var described []string
	for _, o := range doc.ops {
		described = append(described, o.key())
	}
	for _, k := range routeKeys {
		if strings.Contains(k, " /api/v1/") && !slices.Contains(described, k) {
			undescribed = append(undescribed, k)
		}
	}
	for _, k := range described {
		if !slices.Contains(routeKeys, k) {
			unserved = append(unserved, k)
		}
	}
	return undescribed, unserved
}

// TestOpenAPICoversRoutes walks the router's own routes (gin's
// engine.Routes(), with the sub-routes of /api/v1/artifacts/*path): a
// route under /api/v1 that openapi.json does not describe fails, and so
// does an operation of the document that the router does not serve.
func TestOpenAPICoversRoutes(t *testing.T) {
	_, _, svc := testserver.New(t)
	doc := loadAPIDocument(t)
	s := newAPI(t, api.Config{DML: svc})
	keys, problems := s.RouteKeys()
	for _, p := range problems {
		t.Error(p)
	}
	undescribed, unserved := openAPIGaps(keys, doc)
	for _, k := range undescribed {
		t.Errorf("route %s is not in api/openapi.json: describe it in api/openapi_ops_test.go and run `go generate ./api`", k)
	}
	for _, k := range unserved {
		t.Errorf("api/openapi.json describes %s, which the router does not serve", k)
	}
	if !t.Failed() {
		t.Logf("%d operations described, every one served; every /api/v1 route described", len(doc.ops))
	}

	t.Run("a new route is noticed", func(t *testing.T) {
		s := newAPI(t, api.Config{DML: svc})
		s.Engine().POST("/api/v1/admin/reindex", func(*gin.Context) {})
		keys, _ := s.RouteKeys()
		undescribed, _ := openAPIGaps(keys, doc)
		if !slices.Equal(undescribed, []string{"POST /api/v1/admin/reindex"}) {
			t.Fatalf("undescribed routes %v, want the added one", undescribed)
		}
	})
	t.Run("a route gone is noticed", func(t *testing.T) {
		keys, _ := s.RouteKeys()
		keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "GET /api/v1/whoami" })
		_, unserved := openAPIGaps(keys, doc)
		if !slices.Equal(unserved, []string{"GET /api/v1/whoami"}) {
			t.Fatalf("unserved operations %v, want the removed one", unserved)
		}
	})
}

// TestOpenAPIServed: the document is served without a token, byte for
// byte the embedded one, and it is OpenAPI 3.1.
func TestOpenAPIServed(t *testing.T) {
	srv, _, _ := testserver.New(t)
	resp, err := http.Get(srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/v1/openapi.json without a token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, api.OpenAPIDocument()) {
		t.Fatal("the served document is not the embedded one")
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.OpenAPI != "3.1.0" || len(doc.Paths) == 0 {
		t.Fatalf("served document: openapi %q, %d paths, %v", doc.OpenAPI, len(doc.Paths), err)
	}
}

// TestOpenAPIExamples validates every example of the document against
// its schema: the examples of request and answer bodies (a media type's
// example, against its schema) and those of schemas (examples).
func TestOpenAPIExamples(t *testing.T) {
	doc := loadAPIDocument(t)
	checked := 0
	var walk func(pointer string, v any)
	walk = func(pointer string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ex, ok := v["example"]; ok {
				if _, ok := v["schema"]; !ok {
					t.Errorf("%s: an example without a schema", pointer)
				} else {
					validateValue(t, doc.schema(t, pointer+"/schema"), ex, pointer+"/example")
					checked++
				}
			}
			if exs, ok := v["examples"].([]any); ok {
				for i, ex := range exs {
					validateValue(t, doc.schema(t, pointer), ex, pointer+"/examples/"+strconv.Itoa(i))
					checked++
				}
			}
			for k, x := range v {
				walk(pointer+"/"+pointerToken(k), x)
			}
		case []any:
			for i, x := range v {
				walk(pointer+"/"+strconv.Itoa(i), x)
			}
		}
	}
	walk("", doc.raw)
	if checked == 0 {
		t.Fatal("the document has no examples to check")
	}
	t.Logf("%d examples valid against their schemas", checked)

	t.Run("a wrong example is caught", func(t *testing.T) {
		inst := map[string]any{"name": 7}
		err := doc.schema(t, "/components/schemas/TokenRequest").Validate(inst)
		if err == nil {
			t.Fatal("a token request whose name is a number validates")
		}
	})
}

// TestOpenAPISchemasValid checks every schema of the document (the
// components, and the schemas of every parameter and body) against the
// JSON Schema 2020-12 meta-schema (the validator's own copy), and
// compiles each one.
func TestOpenAPISchemasValid(t *testing.T) {
	doc := loadAPIDocument(t)
	meta, err := jsonschema.NewCompiler().Compile("https://json-schema.org/draft/2020-12/schema")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	check := func(pointer string, v any) {
		validateValue(t, meta, v, pointer)
		doc.schema(t, pointer)
		checked++
	}
	for name, s := range doc.raw["components"].(map[string]any)["schemas"].(map[string]any) {
		check("/components/schemas/"+pointerToken(name), s)
	}
	var walk func(pointer string, v any)
	walk = func(pointer string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "schema" || k == "x-dml-line-schema" {
					check(pointer+"/"+k, x)
					continue
				}
				walk(pointer+"/"+pointerToken(k), x)
			}
		case []any:
			for i, x := range v {
				walk(pointer+"/"+strconv.Itoa(i), x)
			}
		}
	}
	walk("/paths", doc.raw["paths"])
	t.Logf("%d schemas valid JSON Schema 2020-12", checked)

	t.Run("an invalid schema is caught", func(t *testing.T) {
		inst := map[string]any{"type": "strng"}
		b, _ := json.Marshal(inst)
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if meta.Validate(v) == nil {
			t.Fatal(`{"type":"strng"} is a valid schema`)
		}
	})
}

// validateValue validates a value decoded by encoding/json against sch.
func validateValue(t *testing.T, sch *jsonschema.Schema, v any, what string) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s does not match its schema: %v", what, err)
	}
}

// recordedAnswer is one answer of the server, as a client got it.
type recordedAnswer struct {
	method, path, query string
	status              int
	contentType         string
	body                []byte
	// truncated: the body was longer than the recorder keeps.
	truncated bool
	// request is the request's body and requestType its Content-Type.
	request, requestType string
}

// answerRecorder keeps every answer of the server it wraps.
type answerRecorder struct {
	mu      sync.Mutex
	answers []recordedAnswer
}

// maxRecordedBody bounds what is kept of a body (downloads of content are
// not checked against a schema).
const maxRecordedBody = 4 << 20

func (r *answerRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// The request's body is kept (bounded) and handed on unchanged.
		reqBody, err := io.ReadAll(io.LimitReader(req.Body, maxRecordedBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(reqBody), req.Body))
		c := &capturingWriter{ResponseWriter: w}
		h.ServeHTTP(c, req)
		status := c.status
		if status == 0 {
			status = http.StatusOK
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.answers = append(r.answers, recordedAnswer{method: req.Method, path: req.URL.Path, query: req.URL.RawQuery,
			status: status, contentType: w.Header().Get("Content-Type"), body: c.body.Bytes(), truncated: c.truncated,
			request: string(reqBody), requestType: req.Header.Get("Content-Type")})
	})
}

type capturingWriter struct {
	http.ResponseWriter
	status    int
	body      bytes.Buffer
	truncated bool
}

func (c *capturingWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *capturingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if room := maxRecordedBody - c.body.Len(); room < len(p) {
		c.body.Write(p[:max(room, 0)])
		c.truncated = true
	} else {
		c.body.Write(p)
	}
	return c.ResponseWriter.Write(p)
}

// Flush lets the streaming answers (fsck, gc) stream through.
func (c *capturingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *capturingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// checkAnswer checks one answer against the document: its operation must
// describe its status; a JSON body must validate against that status's
// schema (for an error, whose schema lists the operation's codes, that
// its code is one of them); each line of an NDJSON body against its line
// schema. It returns the operation, or nil for a path outside /api/v1.
func checkAnswer(t *testing.T, doc *apiDocument, a recordedAnswer) *documentedOp {
	t.Helper()
	if !strings.HasPrefix(a.path, "/api/v1/") {
		return nil
	}
	what := fmt.Sprintf("%s %s?%s → %d", a.method, a.path, a.query, a.status)
	op := doc.find(a.method, a.path)
	if op == nil {
		t.Errorf("%s: no operation of the document serves it", what)
		return nil
	}
	// A JSON body the server accepted must be one the document allows:
	// request schemas must not be stricter than the server. (Routes
	// without a body ignore one.)
	if rb, ok := op.op["requestBody"].(map[string]any); ok && a.status < 300 && a.request != "" {
		if _, isJSON := rb["content"].(map[string]any)["application/json"]; isJSON {
			validateBody(t, doc, op.pointer+"/requestBody/content/application~1json/schema", []byte(a.request), what+" (its request)")
		}
	}
	resPointer := op.pointer + "/responses/" + strconv.Itoa(a.status)
	res, ok := doc.at(resPointer).(map[string]any)
	if !ok {
		t.Errorf("%s: %s does not describe status %d (body %.300s)", what, op.key(), a.status, a.body)
		return op
	}
	content, _ := res["content"].(map[string]any)
	if a.method == http.MethodHead {
		// net/http drops what the handler writes: the client gets no body.
		return op
	}
	if a.status == http.StatusNoContent || a.status == http.StatusNotModified {
		if len(a.body) > 0 {
			t.Errorf("%s: a body where none is described", what)
		}
		return op
	}
	if content == nil {
		if len(a.body) > 0 {
			t.Errorf("%s: %s describes no body, got %.200s", what, op.key(), a.body)
		}
		return op
	}
	mt, _, err := mime.ParseMediaType(a.contentType)
	if err != nil {
		t.Errorf("%s: Content-Type %q: %v", what, a.contentType, err)
		return op
	}
	media, ok := content[mt].(map[string]any)
	if !ok {
		// Stored bytes go out with the media type they were stored with.
		if _, stored := content["application/octet-stream"]; stored {
			return op
		}
		t.Errorf("%s: Content-Type %s, the document describes %v", what, mt, slices.Sorted(mapsKeys(content)))
		return op
	}
	if a.truncated {
		t.Errorf("%s: a body over %d bytes, not checked", what, maxRecordedBody)
		return op
	}
	mediaPointer := resPointer + "/content/" + pointerToken(mt)
	switch {
	case mt == "application/json":
		validateBody(t, doc, mediaPointer+"/schema", a.body, what)
	case media["x-dml-line-schema"] != nil:
		sc := bufio.NewScanner(bytes.NewReader(a.body))
		sc.Buffer(nil, maxRecordedBody)
		for sc.Scan() {
			validateBody(t, doc, mediaPointer+"/x-dml-line-schema", sc.Bytes(), what+" (a line)")
		}
	}
	return op
}

func validateBody(t *testing.T, doc *apiDocument, pointer string, body []byte, what string) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s: the body is not JSON: %v (%.200s)", what, err, body)
		return
	}
	if err := doc.schema(t, pointer).Validate(inst); err != nil {
		t.Errorf("%s: the body does not match the schema at %s:\n%v\nbody: %.600s", what, pointer, err, body)
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sweepQueries are the query strings that let read operations succeed.
var sweepQueries = map[string]string{
	"GET /api/v1/audit/proofs/inclusion":   "index=1&size=3",
	"GET /api/v1/audit/proofs/consistency": "from=1&to=3",
	"GET /api/v1/audit/entries":            "start=0&limit=50",
	"GET /api/v1/events":                   "limit=20",
	"POST /api/v1/retention/run":           "dryRun=true",
}

// TestOpenAPIAnswersMatch checks the server's real answers against the
// document. A server records every answer while a release goes through
// its whole lifecycle over HTTP (push, evidence, create, approvals,
// deployments, review, close; another is cancelled); a second, where
// every kind of resource exists (the access matrix's world), is sent
// every operation of the document by a role the matrix grants, for an
// existing and a missing resource. Each answer's status must be one its
// operation describes, its JSON body must validate against that status's
// schema, and an error's code must be one the operation lists.
func TestOpenAPIAnswersMatch(t *testing.T) {
	doc := loadAPIDocument(t)
	rec := &answerRecorder{}

	rel := newRelEnv(t, true, testserver.WithHandler(rec.wrap))
	must := func(what string, code, want int) {
		t.Helper()
		if code != want {
			t.Fatalf("%s: %d, want %d", what, code, want)
		}
	}
	var hook struct {
		ID string `json:"id"`
	}
	must("create a webhook", apiCall(t, http.MethodPost, rel.url+"/api/v1/webhooks", rel.admin,
		[]byte(`{"url":"https://hooks.example.com/dml","secret":"openapi-secret-0123456789"}`), &hook), http.StatusCreated)
	rootDoc, _ := testkeys.TrustedRoot(t)
	must("install a trusted root", apiCall(t, http.MethodPut, rel.url+"/api/v1/trust/roots/public-good", rel.admin, rootDoc, nil), http.StatusCreated)
	must("trust an identity", apiCall(t, http.MethodPost, rel.url+"/api/v1/trust/identities", rel.admin,
		[]byte(`{"id":"gha","root":"public-good","issuer":"https://token.actions.githubusercontent.com","subject":"https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"}`), nil), http.StatusCreated)
	rel.driveTo(t, "closed")
	rel.driveTo(t, "cancelled")
	planning := rel.create(t, nil)
	must("set the plan", apiCall(t, http.MethodPut, rel.releaseURL(planning.Name)+"/plan", rel.rm, mustJSON(t, planBody("new plan")), nil), http.StatusOK)
	must("set the artifacts", apiCall(t, http.MethodPut, rel.releaseURL(planning.Name)+"/artifacts", rel.rm, mustJSON(t, artifactsBody()), nil), http.StatusOK)
	deploying := rel.driveTo(t, "deploying")
	must("request an emergency change", apiCall(t, http.MethodPost, rel.releaseURL(deploying.Name)+"/emergency", rel.rm, []byte(`{"reason":"INC-9: payments down"}`), nil), http.StatusOK)
	must("list deliveries", apiCall(t, http.MethodGet, rel.url+"/api/v1/webhooks/"+hook.ID+"/deliveries", rel.admin, nil, nil), http.StatusOK)

	w := newMatrixWorld(t, testserver.WithHandler(rec.wrap))
	rules := slices.Clone(api.AccessMatrix)
	methodRank := map[string]int{http.MethodGet: 0, http.MethodHead: 0, http.MethodPost: 1, http.MethodPut: 1, http.MethodPatch: 1, http.MethodDelete: 2}
	// Revoking a token (the admin's own, for the existing resource) and
	// signing out come last: they end the tokens the sweep uses.
	last := func(r api.AccessRule) int {
		if r.Path == "/api/v1/tokens/{id}" || r.Path == "/api/v1/sso/session" {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(rules, func(a, b api.AccessRule) int {
		if d := last(a) - last(b); d != 0 {
			return d
		}
		return methodRank[a.Method] - methodRank[b.Method]
	})
	for _, rule := range rules {
		if !strings.HasPrefix(rule.Path, "/api/v1/") {
			continue
		}
		token := ""
		if !rule.Public {
			token = w.tokens[string(rule.Grants[0].Role)]
		}
		_, body, ct := requestFor(t, rule)
		query := sweepQueries[rule.Method+" "+rule.Path]
		if query != "" {
			query = "?" + query
		}
		values := []pathValues{w.existing, w.missing}
		if rule.Method == http.MethodDelete {
			values = []pathValues{w.missing, w.existing}
		}
		for _, v := range values {
			w.send(t, rule.Method, w.url+fill(t, rule.Path, v)+query, token, body, ct)
		}
	}

	rec.mu.Lock()
	answers := slices.Clone(rec.answers)
	rec.mu.Unlock()
	seen := map[string][]int{}
	for _, a := range answers {
		if op := checkAnswer(t, doc, a); op != nil {
			seen[op.key()] = append(seen[op.key()], a.status)
		}
	}
	var unanswered, noSuccess []string
	for _, o := range doc.ops {
		statuses := seen[o.key()]
		switch {
		case len(statuses) == 0:
			unanswered = append(unanswered, o.key())
		case !slices.ContainsFunc(statuses, func(s int) bool { return s < 300 }):
			noSuccess = append(noSuccess, o.key())
		}
	}
	for _, k := range unanswered {
		t.Errorf("%s: no request of this test reached it", k)
	}
	t.Logf("%d answers checked against the document; %d of %d operations answered with success", len(answers), len(doc.ops)-len(unanswered)-len(noSuccess), len(doc.ops))
	if len(noSuccess) > 0 {
		t.Logf("operations checked only on their error answers: %s", strings.Join(noSuccess, ", "))
	}
}

// TestOpenAPIMetaSchema validates the document against the OpenAPI 3.1
// meta-schema (https://spec.openapis.org/oas/3.1/schema/2022-10-07). No
// third-party file is kept in the tree: scripts/test.sh takes the schema
// from a pinned Go module that ships it (github.com/pb33f/libopenapi, in
// the module cache, its bytes checked) and names the file in
// DML_TEST_OAS31_SCHEMA. Without it the test skips; in CI it fails.
func TestOpenAPIMetaSchema(t *testing.T) {
	path := os.Getenv("DML_TEST_OAS31_SCHEMA")
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DML_TEST_OAS31_SCHEMA is not set: scripts/test.sh fetches the OpenAPI 3.1 meta-schema")
		}
		t.Skip("DML_TEST_OAS31_SCHEMA is not set; scripts/test.sh fetches the OpenAPI 3.1 meta-schema")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	const id = "https://spec.openapis.org/oas/3.1/schema/2022-10-07"
	if m, _ := meta.(map[string]any); m["$id"] != id {
		t.Fatalf("%s is not the OpenAPI 3.1 meta-schema (its $id is %v)", path, m["$id"])
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, meta); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	validate := func(doc []byte) error {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		return sch.Validate(inst)
	}
	if err := validate(api.OpenAPIDocument()); err != nil {
		t.Fatalf("api/openapi.json is not a valid OpenAPI 3.1 document: %v", err)
	}
	// The check can fail: a parameter without its required "in" is caught.
	broken := bytes.Replace(api.OpenAPIDocument(), []byte(`"in": "query",`), nil, 1)
	if bytes.Equal(broken, api.OpenAPIDocument()) || validate(broken) == nil {
		t.Fatal("a document with a parameter lacking \"in\" validates")
	}
}
