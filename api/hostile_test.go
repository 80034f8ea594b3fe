package api_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/internal/strictjson"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
)

// hostileCase is one hostile request, sent over a raw TCP connection so
// that nothing between the test and the server cleans it up: the request
// target, the headers and the framing go on the wire exactly as written.
type hostileCase struct {
	name   string
	method string
	// target is the request-target, verbatim ("/v2/a/%2e%2e/b/tags/list").
	target string
	// as is whose bearer token is sent ("admin", "publisher", ...); none
	// when empty or when headers set Authorization.
	as      string
	headers []string // "Key", "value" pairs, verbatim
	body    []byte
	// length, when set, is sent as Content-Length instead of len(body).
	length string
	// halfClose shuts the client's side after the body, so a body shorter
	// than its Content-Length ends instead of keeping the server waiting.
	halfClose bool

	status int
	// code is the error code of the body; netHTTP when net/http answers
	// in plain text before any handler runs (bad framing, huge headers).
	code string
	// pending names the branch of issue 9 whose fix this case expects
	// (the case fails until it is merged).
	pending string
}

// netHTTP marks answers net/http gives itself, before dml sees the request.
const netHTTP = "(net/http)"

// hostileEnv is everything the cases aim at: an admitted artifact, releases
// in several states, an OCI image with a tag and an open upload session.
type hostileEnv struct {
	*relEnv
	tokens map[string]string
	// planning is a release in planning; released one that is released;
	// active one deploying, with deployment activeDeployment in progress.
	planning, released, active string
	activeDeployment           string
	planDigest                 string
	image                      image
	upload                     string // the upload session's Location
	// doomedUpload is an empty session that the wrong-digest completion
	// discards, as the spec lets it (nothing is stored in it).
	doomedUpload string
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	e := &hostileEnv{relEnv: newRelEnv(t, true)}
	e.tokens = map[string]string{
		"admin": e.admin, "publisher": e.publisher, "rm": e.rm, "approver": e.cab1,
		"deployer": e.stagingDeployer, "auditor": e.auditor,
	}
	r := e.create(t, nil)
	e.planning, e.planDigest = r.Name, r.gate(t, "plan").ExpectedDigest
	e.released = e.driveTo(t, "released").Name
	active := e.driveTo(t, "deploying+active")
	e.active = active.Name
	for _, d := range active.Deployments {
		if d.Status == "in_progress" {
			e.activeDeployment = d.ID
		}
	}
	reg := registry{t: t, base: e.url, token: e.publisher}
	e.image = reg.pushImage("payments/web", "hostile", nil, "")
	reg.expect(reg.pushManifest("payments/web", "1.0", ocispec.MediaTypeImageManifest, e.image.manifest), http.StatusCreated, "")
	start := reg.do(http.MethodPost, "/v2/payments/web/blobs/uploads/", nil)
	reg.expect(start, http.StatusAccepted, "")
	e.upload = header(t, start, "Location")
	// Five bytes in the session, so out-of-order chunks have somewhere
	// to be out of order from.
	reg.expect(reg.do(http.MethodPatch, e.upload, bytes.NewReader([]byte("01234")), "Content-Range", "0-4"), http.StatusAccepted, "")
	doomed := reg.do(http.MethodPost, "/v2/payments/web/blobs/uploads/", nil)
	reg.expect(doomed, http.StatusAccepted, "")
	e.doomedUpload = header(t, doomed, "Location")
	return e
}

// send writes c on a fresh connection and reads the answer.
func (e *hostileEnv) send(t *testing.T, c hostileCase) (int, string, []byte) {
	t.Helper()
	u, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A guard against a hang, not a measure of speed.
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))

	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", c.method, c.target, u.Host)
	custom := map[string]bool{}
	for i := 0; i+1 < len(c.headers); i += 2 {
		fmt.Fprintf(&req, "%s: %s\r\n", c.headers[i], c.headers[i+1])
		custom[strings.ToLower(c.headers[i])] = true
	}
	if c.as != "" && !custom["authorization"] {
		tok, ok := e.tokens[c.as]
		if !ok {
			t.Fatalf("no token for %q", c.as)
		}
		fmt.Fprintf(&req, "Authorization: Bearer %s\r\n", tok)
	}
	switch {
	case c.length != "":
		fmt.Fprintf(&req, "Content-Length: %s\r\n", c.length)
	case !custom["transfer-encoding"] && (c.body != nil || c.method == http.MethodPut || c.method == http.MethodPost || c.method == http.MethodPatch):
		fmt.Fprintf(&req, "Content-Length: %d\r\n", len(c.body))
	}
	req.WriteString("\r\n")
	req.Write(c.body)

	// Write while reading: a server that refuses a large body answers
	// before reading all of it.
	go func() {
		if _, err := conn.Write(req.Bytes()); err == nil && c.halfClose {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %.80s: no HTTP answer: %v", c.method, c.target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body) // a cut body shows as a short read; the status is what counts
	var eb struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	code := netHTTP
	if json.Unmarshal(body, &eb) == nil {
		code = ""
		if len(eb.Errors) > 0 {
			code = eb.Errors[0].Code
		}
	}
	return resp.StatusCode, code, body
}

// jsonEndpoint is a route that takes a JSON body, with a body it would
// accept and the code it answers a malformed one with.
type jsonEndpoint struct {
	name, method, target, as, code string
	valid                          []byte
}

// jsonCases are the hostile variants of each endpoint's valid body: data
// after it, a key given twice, nesting beyond strictjson.MaxDepth, a field
// of the wrong type.
func jsonCases(t *testing.T, eps []jsonEndpoint) []hostileCase {
	t.Helper()
	deep := strings.Repeat("[", strictjson.MaxDepth+1) + strings.Repeat("]", strictjson.MaxDepth+1)
	var out []hostileCase
	for _, ep := range eps {
		if err := strictjson.Check(ep.valid); err != nil {
			t.Fatalf("%s: the valid body is not: %v", ep.name, err)
		}
		open := bytes.IndexByte(ep.valid, '{')
		key := firstKey(t, ep.valid[open:])
		variant := func(what string, body []byte) hostileCase {
			return hostileCase{name: ep.name + ": " + what, method: ep.method, target: ep.target, as: ep.as, body: body, status: http.StatusBadRequest, code: ep.code}
		}
		out = append(out,
			variant("trailing data", append(bytes.Clone(ep.valid), []byte(` {"`+key+`":null}`)...)),
			variant("duplicate key", concat(ep.valid[:open+1], []byte(`"`+key+`":null,`), ep.valid[open+1:])),
			variant("nested too deep", concat(ep.valid[:open+1], []byte(`"`+key+`":`+deep+`,`), ep.valid[open+1:])),
			variant("wrong type", bytes.Replace(ep.valid, []byte(`"`+key+`":`), []byte(`"`+key+`":{"not":"this"},"ignored":`), 1)),
		)
	}
	return out
}

// firstKey is the first key of the JSON object b.
func firstKey(t *testing.T, b []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	tok, err := dec.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.(string)
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestHostileInput sends every request in the table to a live server and
// checks that each is refused with its specific 4xx status and code, and
// that none changed the audit log or the blob store.
func TestHostileInput(t *testing.T) {
	e := newHostileEnv(t)
	const art = "/api/v1/artifacts/payments/api/versions/1.4.2"
	rel := func(name string) string { return "/api/v1/releases/" + name }
	content := fixture(t, "payments-api-1.4.2.tar.gz")
	sig := strings.TrimSpace(string(fixture(t, "payments-api-1.4.2.tar.gz.sig")))
	dsse := fixture(t, "test-result-passed.dsse.json")
	signer := loadFixtureSigner(t)
	zeros := "sha256:" + strings.Repeat("0", 64)
	sqlName := url.PathEscape("api';DROP TABLE artifacts;--")
	long := strings.Repeat("a", 300)
	hugeMediaType := "application/vnd.example." + strings.Repeat("x", 20000)

	manifest := func(edit func(m *ocispec.Manifest)) []byte {
		m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: e.image.config, Layers: []ocispec.Descriptor{e.image.layer}}
		edit(&m)
		return mustJSON(t, m)
	}
	wrongPayloadType := signEnvelopeWith(t, signer, "text/plain", []byte("hello"))
	untrustedPEM := string(fixture(t, "untrusted/cosign.pub"))

	cases := []hostileCase{
		// Names on the REST API.
		{name: "REST name with ..", method: "GET", target: "/api/v1/artifacts/payments/../etc/versions/1.0", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "REST push to a name with ..", method: "PUT", target: "/api/v1/artifacts/payments/../../etc/versions/1.0", as: "publisher", body: []byte("x"), status: 400, code: "NAME_INVALID"},
		{name: "REST name with %2e%2e", method: "GET", target: "/api/v1/artifacts/payments/%2e%2e/etc/versions/1.0", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "REST push to a name with %2e%2e", method: "PUT", target: "/api/v1/artifacts/payments/%2E%2E/etc/versions/1.0", as: "publisher", body: []byte("x"), status: 400, code: "NAME_INVALID"},
		{name: "REST name with //", method: "GET", target: "/api/v1/artifacts/payments//api/versions/1.4.2", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "REST name with NUL", method: "GET", target: "/api/v1/artifacts/payments%00/api/versions/1.4.2", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "REST push to a name with NUL", method: "PUT", target: "/api/v1/artifacts/pay%00ments/versions/1.0", as: "publisher", body: []byte("x"), status: 400, code: "NAME_INVALID"},
		{name: "REST over-long name", method: "PUT", target: "/api/v1/artifacts/" + long + "/versions/1.0", as: "publisher", body: []byte("x"), status: 400, code: "NAME_INVALID"},
		{name: "REST upper-case name", method: "GET", target: "/api/v1/artifacts/Payments/API/versions/1.4.2", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "REST name with SQL", method: "PUT", target: "/api/v1/artifacts/payments/" + sqlName + "/versions/1.0", as: "publisher", body: []byte("x"), status: 400, code: "NAME_INVALID"},
		{name: "REST over-long version", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/" + strings.Repeat("1", 129), as: "publisher", body: []byte("x"), status: 400, code: "VERSION_INVALID"},
		{name: "REST version ..", method: "GET", target: "/api/v1/artifacts/payments/api/versions/..", as: "publisher", status: 400, code: "VERSION_INVALID"},
		{name: "REST version with NUL", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/1.0%00", as: "publisher", body: []byte("x"), status: 400, code: "VERSION_INVALID"},
		{name: "REST version with SQL", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/" + url.PathEscape("1.0' OR '1'='1"), as: "publisher", body: []byte("x"), status: 400, code: "VERSION_INVALID"},

		// Digests.
		{name: "REST checksum header not hex", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/9.9.9", as: "publisher", headers: []string{"X-Checksum-Sha256", "zz" + strings.Repeat("0", 62)}, body: []byte("x"), status: 400, code: "DIGEST_INVALID"},
		{name: "REST checksum of other bytes", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/9.9.9", as: "publisher", headers: []string{"X-Checksum-Sha256", strings.Repeat("0", 64)}, body: []byte("x"), status: 400, code: "DIGEST_INVALID"},
		{name: "REST evidence digest malformed", method: "GET", target: art + "/evidence/sha256:xyz", as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "REST evidence digest of unknown algorithm", method: "GET", target: art + "/evidence/md5:" + strings.Repeat("0", 32), as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "OCI blob digest malformed", method: "GET", target: "/v2/payments/web/blobs/sha256:xyz", as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "OCI blob digest of unknown algorithm", method: "GET", target: "/v2/payments/web/blobs/md5:" + strings.Repeat("0", 32), as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "OCI blob digest upper-case hex", method: "GET", target: "/v2/payments/web/blobs/sha256:" + strings.Repeat("A", 64), as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "OCI blob digest too short", method: "GET", target: "/v2/payments/web/blobs/sha512:" + strings.Repeat("0", 64), as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "OCI delete blob of malformed digest", method: "DELETE", target: "/v2/payments/web/blobs/sha256:", as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "OCI manifest digest malformed", method: "GET", target: "/v2/payments/web/manifests/sha256:xyz", as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "OCI referrers of malformed digest", method: "GET", target: "/v2/payments/web/referrers/notadigest", as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "OCI monolithic push, malformed digest", method: "POST", target: "/v2/payments/web/blobs/uploads/?digest=sha256:xyz", as: "publisher", body: []byte("abc"), status: 400, code: "DIGEST_INVALID"},
		{name: "OCI monolithic push, digest of other bytes", method: "POST", target: "/v2/payments/web/blobs/uploads/?digest=" + zeros, as: "publisher", body: []byte("abc"), status: 400, code: "DIGEST_INVALID"},
		{name: "OCI complete upload without digest", method: "PUT", target: e.upload, as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "OCI complete upload with malformed digest", method: "PUT", target: e.upload + "?digest=sha256:" + url.QueryEscape("' OR 1=1--"), as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "OCI complete upload with the wrong digest", method: "PUT", target: e.doomedUpload + "?digest=" + zeros, as: "publisher", body: []byte("abc"), status: 400, code: "DIGEST_INVALID"},

		// Names and tags on /v2/.
		{name: "OCI name with ..", method: "GET", target: "/v2/payments/../web/tags/list", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "OCI name with %2e%2e", method: "GET", target: "/v2/payments/%2e%2e/web/manifests/1.0", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "OCI name with //", method: "POST", target: "/v2/payments//web/blobs/uploads/", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "OCI name with NUL", method: "GET", target: "/v2/payments%00/web/blobs/" + e.image.layer.Digest.String(), as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "OCI over-long name", method: "GET", target: "/v2/" + long + "/tags/list", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "OCI upper-case name", method: "GET", target: "/v2/Payments/Web/manifests/1.0", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "OCI name with SQL", method: "GET", target: "/v2/payments/" + sqlName + "/manifests/1.0", as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "OCI over-long tag", method: "GET", target: "/v2/payments/web/manifests/" + strings.Repeat("t", 129), as: "publisher", status: 400, code: "MANIFEST_INVALID"},
		{name: "OCI push to an over-long tag", method: "PUT", target: "/v2/payments/web/manifests/" + strings.Repeat("t", 129), as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: e.image.manifest, status: 400, code: "MANIFEST_INVALID"},
		{name: "OCI tag ..", method: "PUT", target: "/v2/payments/web/manifests/..", as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: e.image.manifest, status: 400, code: "MANIFEST_INVALID"},
		{name: "OCI tag with SQL", method: "DELETE", target: "/v2/payments/web/manifests/" + url.PathEscape("1.0';DELETE FROM tags;--"), as: "publisher", status: 400, code: "MANIFEST_INVALID"},
		{name: "OCI extra tag with NUL", method: "PUT", target: "/v2/payments/web/manifests/" + e.image.desc.Digest.String() + "?tag=a%00b", as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: e.image.manifest, status: 400, code: "MANIFEST_INVALID"},
		{name: "OCI upload ID ..", method: "PATCH", target: "/v2/payments/web/blobs/uploads/..", as: "publisher", body: []byte("x"), status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "OCI upload ID with SQL", method: "GET", target: "/v2/payments/web/blobs/uploads/" + url.PathEscape("x' OR '1'='1"), as: "publisher", status: 404, code: "BLOB_UPLOAD_UNKNOWN"},

		// Query parameters.
		{name: "OCI tags n=-1", method: "GET", target: "/v2/payments/web/tags/list?n=-1", as: "publisher", status: 400, code: "PAGINATION_NUMBER_INVALID", pending: "i9-oci"},
		{name: "OCI tags n not a number", method: "GET", target: "/v2/payments/web/tags/list?n=1%27%20OR%201=1", as: "publisher", status: 400, code: "PAGINATION_NUMBER_INVALID", pending: "i9-oci"},
		{name: "OCI tags n overflowing", method: "GET", target: "/v2/payments/web/tags/list?n=99999999999999999999", as: "publisher", status: 400, code: "PAGINATION_NUMBER_INVALID", pending: "i9-oci"},
		{name: "OCI tags last with SQL", method: "GET", target: "/v2/payments/web/tags/list?last=" + url.QueryEscape("' OR '1'='1"), as: "publisher", status: 400, code: "TAG_INVALID", pending: "i9-oci"},
		{name: "OCI mount of a malformed digest", method: "POST", target: "/v2/payments/web/blobs/uploads/?mount=" + url.QueryEscape("sha256:' OR 1=1") + "&from=payments/api", as: "publisher", status: 400, code: "DIGEST_INVALID"},
		{name: "REST list by a name with SQL", method: "GET", target: "/api/v1/artifacts?name=" + url.QueryEscape("' OR 1=1 --"), as: "publisher", status: 400, code: "NAME_INVALID"},
		{name: "REST list by a state with SQL", method: "GET", target: "/api/v1/artifacts?state=" + url.QueryEscape("admitted' OR '1'='1"), as: "publisher", status: 400, code: "INVALID_INPUT"},
		{name: "REST list with a forged cursor", method: "GET", target: "/api/v1/artifacts?cursor=" + url.QueryEscape("' UNION SELECT * FROM tokens --"), as: "publisher", status: 400, code: "INVALID_INPUT"},
		{name: "REST list limit -1", method: "GET", target: "/api/v1/artifacts?limit=-1", as: "publisher", status: 400, code: "INVALID_INPUT"},
		{name: "REST list limit overflowing", method: "GET", target: "/api/v1/artifacts?limit=99999999999999999999", as: "publisher", status: 400, code: "INVALID_INPUT"},
		{name: "releases list by a state with SQL", method: "GET", target: "/api/v1/releases?state=" + url.QueryEscape("planning'--"), as: "rm", status: 400, code: "INVALID_INPUT"},
		{name: "releases list with a forged cursor", method: "GET", target: "/api/v1/releases?cursor=" + url.QueryEscape("1; DROP TABLE releases"), as: "rm", status: 400, code: "INVALID_INPUT"},
		{name: "releases list limit 0", method: "GET", target: "/api/v1/releases?limit=0", as: "rm", status: 400, code: "INVALID_INPUT"},
		{name: "audit entries start -1", method: "GET", target: "/api/v1/audit/entries?start=-1", as: "auditor", status: 400, code: "INVALID_INPUT"},
		{name: "audit entries limit with SQL", method: "GET", target: "/api/v1/audit/entries?limit=" + url.QueryEscape("1 OR 1=1"), as: "auditor", status: 400, code: "INVALID_INPUT"},
		{name: "audit inclusion proof beyond the log", method: "GET", target: "/api/v1/audit/proofs/inclusion?index=5&size=99999999", as: "auditor", status: 400, code: "INVALID_INPUT"},
		{name: "audit consistency proof backwards", method: "GET", target: "/api/v1/audit/proofs/consistency?from=5&to=2", as: "auditor", status: 400, code: "INVALID_INPUT"},

		// Identifiers with SQL metacharacters in paths and bodies.
		{name: "release name with SQL", method: "GET", target: rel(url.PathEscape("x' OR '1'='1")), as: "rm", status: 404, code: "NOT_FOUND"},
		{name: "plan of a release name with SQL", method: "PUT", target: rel(url.PathEscape("x';DROP TABLE releases;--")) + "/plan", as: "rm", body: []byte(`{"changeRef":"CHG-1","title":"t","environments":["staging"]}`), status: 404, code: "NOT_FOUND"},
		{name: "new release named with SQL", method: "POST", target: "/api/v1/releases", as: "rm", body: createBody("r';DROP TABLE releases;--", nil), status: 400, code: "INVALID_INPUT"},
		{name: "token named with SQL", method: "POST", target: "/api/v1/tokens", as: "admin", body: []byte(`{"name":"x'); DROP TABLE tokens;--","roles":["auditor"]}`), status: 400, code: "INVALID_INPUT"},
		{name: "token revoked by an ID with SQL", method: "DELETE", target: "/api/v1/tokens/" + url.PathEscape("1 OR 1=1"), as: "admin", status: 404, code: "NOT_FOUND"},
		{name: "trust key with an ID with SQL", method: "POST", target: "/api/v1/trust/keys", as: "admin", body: mustJSON(t, map[string]string{"id": "k' OR '1'='1", "publicKey": untrustedPEM}), status: 400, code: "INVALID_INPUT"},
		{name: "trust key revoked by an ID with SQL", method: "POST", target: "/api/v1/trust/keys/" + url.PathEscape("ci' OR '1'='1") + "/revoke", as: "admin", status: 404, code: "NOT_FOUND"},
		{name: "signature naming a key ID with SQL", method: "POST", target: art + "/signatures", as: "publisher", body: keyedSignature("ci' OR '1'='1", []byte(sig)), status: 403, code: "KEY_UNTRUSTED"},
		{name: "token with an environment with SQL", method: "POST", target: "/api/v1/tokens", as: "admin", body: []byte(`{"name":"d","roles":["deployer"],"environments":["prod' OR '1'='1"]}`), status: 400, code: "INVALID_INPUT"},
		{name: "deployment to an environment with SQL", method: "POST", target: rel(e.released) + "/deployments", as: "deployer", body: []byte(`{"environment":"staging' OR '1'='1","target":"k8s","status":"in_progress"}`), status: 403, code: "NOT_AUTHORIZED_FOR_ENVIRONMENT"},
		{name: "deployment update of an ID with SQL", method: "PATCH", target: rel(e.active) + "/deployments/" + url.PathEscape("1' OR '1'='1"), as: "deployer", body: []byte(`{"status":"succeeded"}`), status: 404, code: "NOT_FOUND"},
		{name: "approval of a gate with SQL, comment with SQL", method: "POST", target: rel(e.planning) + "/approvals", as: "approver", body: mustJSON(t, map[string]string{"gate": "plan' OR '1'='1", "decision": "approve", "digest": e.planDigest, "comment": "'); DELETE FROM approvals;--"}), status: 400, code: "INVALID_INPUT"},
		{name: "rejection with a stale digest, comment with SQL", method: "POST", target: rel(e.planning) + "/approvals", as: "approver", body: mustJSON(t, map[string]string{"gate": "plan", "decision": "reject", "digest": zeros, "comment": "x'); UPDATE releases SET state='closed';--"}), status: 409, code: "STALE_APPROVAL"},
		{name: "plan with SQL in changeRef and title, and an unknown environment grammar", method: "PUT", target: rel(e.planning) + "/plan", as: "rm", body: []byte(`{"changeRef":"CHG-1' OR '1'='1","title":"t'); DROP TABLE releases;--","environments":["Prod'--"]}`), status: 400, code: "INVALID_INPUT"},
		{name: "release artifact named with SQL", method: "PUT", target: rel(e.planning) + "/artifacts", as: "rm", body: []byte(`[{"name":"payments/api' OR '1'='1","version":"1.4.2"}]`), status: 400, code: "NAME_INVALID"},
		{name: "review with SQL outcome", method: "POST", target: rel(e.active) + "/review", as: "rm", body: []byte(`{"outcome":"successful' OR '1'='1","summary":"x'); DROP TABLE reviews;--","objectivesMet":true}`), status: 400, code: "INVALID_INPUT"},

		// The approval digest must be a digest.
		{name: "approval digest that is not a digest", method: "POST", target: rel(e.planning) + "/approvals", as: "approver", body: mustJSON(t, map[string]string{"gate": "plan", "decision": "approve", "digest": "not-a-digest"}), status: 400, code: "DIGEST_INVALID", pending: "i9-lifecycle"},
		{name: "approval digest with SQL", method: "POST", target: rel(e.planning) + "/approvals", as: "approver", body: mustJSON(t, map[string]string{"gate": "plan", "decision": "approve", "digest": "sha256:' OR '1'='1"}), status: 400, code: "DIGEST_INVALID", pending: "i9-lifecycle"},
		{name: "approval digest of unknown algorithm", method: "POST", target: rel(e.planning) + "/approvals", as: "approver", body: mustJSON(t, map[string]string{"gate": "plan", "decision": "approve", "digest": "md5:" + strings.Repeat("0", 32)}), status: 400, code: "DIGEST_INVALID", pending: "i9-lifecycle"},

		// Evidence.
		{name: "signature not base64", method: "POST", target: art + "/signatures", as: "publisher", body: []byte("not base64 at all!"), status: 400, code: "MALFORMED"},
		{name: "keyed signature not base64", method: "POST", target: art + "/signatures", as: "publisher", body: keyedSignature("ci", []byte("%%%")), status: 400, code: "MALFORMED"},
		{name: "keyed signature with a key ID of the wrong type", method: "POST", target: art + "/signatures", as: "publisher", body: []byte(`{"keyId":["ci"],"signature":"` + sig + `"}`), status: 400, code: "MALFORMED"},
		{name: "DSSE payload not base64", method: "POST", target: art + "/attestations", as: "publisher", body: editDSSE(t, dsse, "payload", "%%%"), status: 400, code: "MALFORMED"},
		{name: "DSSE signature not base64", method: "POST", target: art + "/attestations", as: "publisher", body: editDSSE(t, dsse, "signatures", []map[string]string{{"sig": "***"}}), status: 400, code: "MALFORMED"},
		{name: "DSSE with the wrong payload type", method: "POST", target: art + "/attestations", as: "publisher", body: wrongPayloadType, status: 400, code: "UNSUPPORTED"},
		{name: "DSSE claiming in-toto over another payload type's signature", method: "POST", target: art + "/attestations", as: "publisher", body: editDSSE(t, wrongPayloadType, "payloadType", signing.InTotoPayloadType), status: 403, code: "KEY_UNTRUSTED"},
		{name: "evidence larger than the limit", method: "POST", target: art + "/attestations", as: "publisher", body: bytes.Repeat([]byte("A"), 1<<20+1), status: 413, code: "TOO_LARGE"},
		{name: "empty evidence", method: "POST", target: art + "/signatures", as: "publisher", body: []byte{}, status: 400, code: "INVALID_INPUT"},
		{name: "attestation posted as signature", method: "POST", target: art + "/signatures", as: "publisher", body: dsse, status: 400, code: "MALFORMED"},

		// JSON bodies: huge.
		{name: "JSON body larger than the limit", method: "POST", target: "/api/v1/releases", as: "rm", body: append(append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), 1<<20)...), `"}`...), status: 413, code: "TOO_LARGE"},
		{name: "manifest larger than the limit", method: "PUT", target: "/v2/payments/web/manifests/big", as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: bytes.Repeat([]byte(" "), 4<<20+1), status: 413, code: "SIZE_INVALID"},

		// OCI manifests.
		{name: "manifest with a negative size", method: "PUT", target: "/v2/payments/web/manifests/neg", as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: manifest(func(m *ocispec.Manifest) { m.Layers[0].Size = -1 }), status: 400, code: "MANIFEST_INVALID"},
		{name: "manifest with a layer size that is not the blob's", method: "PUT", target: "/v2/payments/web/manifests/size", as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: manifest(func(m *ocispec.Manifest) { m.Layers[0].Size = 999999 }), status: 400, code: "SIZE_INVALID", pending: "i9-oci"},
		{name: "manifest with a config size that is not the blob's", method: "PUT", target: "/v2/payments/web/manifests/size2", as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: manifest(func(m *ocispec.Manifest) { m.Config.Size = 1 }), status: 400, code: "SIZE_INVALID", pending: "i9-oci"},
		{name: "manifest with a 20,000-character layer media type", method: "PUT", target: "/v2/payments/web/manifests/mt", as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: manifest(func(m *ocispec.Manifest) { m.Layers[0].MediaType = hugeMediaType }), status: 400, code: "MANIFEST_INVALID", pending: "i9-oci"},
		{name: "manifest with a 20,000-character artifact type", method: "PUT", target: "/v2/payments/web/manifests/at", as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: manifest(func(m *ocispec.Manifest) { m.ArtifactType = hugeMediaType }), status: 400, code: "MANIFEST_INVALID", pending: "i9-oci"},
		{name: "manifest with a 20,000-character config media type", method: "PUT", target: "/v2/payments/web/manifests/cmt", as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: manifest(func(m *ocispec.Manifest) { m.Config.MediaType = hugeMediaType }), status: 400, code: "MANIFEST_INVALID", pending: "i9-oci"},
		{name: "REST push with a 20,000-character media type", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/8.8.8", as: "publisher", headers: []string{"Content-Type", hugeMediaType}, body: []byte("x"), status: 400, code: "MEDIA_TYPE_INVALID", pending: "i9-oci"},
		{name: "manifest of the wrong schema version type", method: "PUT", target: "/v2/payments/web/manifests/wt", as: "publisher", headers: []string{"Content-Type", ocispec.MediaTypeImageManifest}, body: bytes.Replace(e.image.manifest, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":"2"`), 1), status: 400, code: "MANIFEST_INVALID"},

		// Chunked uploads: Content-Range.
		{name: "Content-Range not a range", method: "PATCH", target: e.upload, as: "publisher", headers: []string{"Content-Range", "abc"}, body: []byte("56789"), status: 400, code: "BLOB_UPLOAD_INVALID"},
		{name: "Content-Range end before start", method: "PATCH", target: e.upload, as: "publisher", headers: []string{"Content-Range", "9-5"}, body: []byte("56789"), status: 400, code: "BLOB_UPLOAD_INVALID"},
		{name: "Content-Range negative", method: "PATCH", target: e.upload, as: "publisher", headers: []string{"Content-Range", "-5-9"}, body: []byte("56789"), status: 400, code: "BLOB_UPLOAD_INVALID"},
		{name: "Content-Range overflowing", method: "PATCH", target: e.upload, as: "publisher", headers: []string{"Content-Range", "5-99999999999999999999"}, body: []byte("56789"), status: 400, code: "BLOB_UPLOAD_INVALID"},
		{name: "Content-Range of the wrong unit", method: "PATCH", target: e.upload, as: "publisher", headers: []string{"Content-Range", "items 5-9"}, body: []byte("56789"), status: 400, code: "BLOB_UPLOAD_INVALID"},
		{name: "Content-Range out of order", method: "PATCH", target: e.upload, as: "publisher", headers: []string{"Content-Range", "7-11"}, body: []byte("56789"), status: 416, code: "RANGE_INVALID"},
		{name: "Content-Range longer than the body", method: "PATCH", target: e.upload, as: "publisher", headers: []string{"Content-Range", "5-20"}, body: []byte("56789"), status: 400, code: "SIZE_INVALID"},
		{name: "Content-Range on the completing PUT, malformed", method: "PUT", target: e.upload + "?digest=" + zeros, as: "publisher", headers: []string{"Content-Range", "5--9"}, body: []byte("56789"), status: 400, code: "BLOB_UPLOAD_INVALID"},

		// Framing: bodies longer or shorter than Content-Length.
		{name: "push body longer than Content-Length", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/7.7.7", as: "publisher", headers: []string{"X-Checksum-Sha256", digest.FromBytes(content[:2000]).Encoded()}, body: content[:2000], length: "1000", status: 400, code: "DIGEST_INVALID"},
		{name: "push body shorter than Content-Length", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/7.7.8", as: "publisher", body: content[:1000], length: "2000", halfClose: true, status: 499, code: "CLIENT_CLOSED_REQUEST", pending: "i9-hardening"},
		{name: "OCI monolithic push shorter than Content-Length", method: "POST", target: "/v2/payments/web/blobs/uploads/?digest=" + digest.FromBytes(content[:2000]).String(), as: "publisher", body: content[:1000], length: "2000", halfClose: true, status: 499, code: "CLIENT_CLOSED_REQUEST", pending: "i9-hardening"},
		{name: "OCI chunk shorter than Content-Length", method: "PATCH", target: e.upload, as: "publisher", body: []byte("567"), length: "5", halfClose: true, status: 499, code: "CLIENT_CLOSED_REQUEST", pending: "i9-hardening"},
		{name: "JSON body longer than Content-Length", method: "POST", target: "/api/v1/tokens", as: "admin", body: []byte(`{"name":"cut","roles":["auditor"]}`), length: "20", status: 400, code: "MALFORMED"},
		{name: "JSON body shorter than Content-Length", method: "POST", target: "/api/v1/tokens", as: "admin", body: []byte(`{"name":"cut","roles":["auditor"]}`), length: "200", halfClose: true, status: 499, code: "CLIENT_CLOSED_REQUEST", pending: "i9-hardening"},
		{name: "Content-Length not a number", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/7.7.9", as: "publisher", body: []byte("x"), length: "abc", status: 400, code: netHTTP},
		{name: "Content-Length negative", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/7.7.9", as: "publisher", body: []byte("x"), length: "-1", status: 400, code: netHTTP},
		{name: "two different Content-Lengths", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/7.7.9", as: "publisher", headers: []string{"Content-Length", "2"}, body: []byte("x"), length: "1", status: 400, code: netHTTP},
		{name: "chunked body that is not chunked", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/7.7.9", as: "publisher", headers: []string{"Transfer-Encoding", "chunked"}, body: []byte("zz\r\nxyz\r\n0\r\n\r\n"), halfClose: true, status: 400, code: "MALFORMED", pending: "a fix in api/body.go after i9-hardening"},
		{name: "unknown Transfer-Encoding", method: "PUT", target: "/api/v1/artifacts/payments/api/versions/7.7.9", as: "publisher", headers: []string{"Transfer-Encoding", "gzip, chunked"}, body: []byte("1\r\nx\r\n0\r\n\r\n"), status: 501, code: netHTTP},

		// Headers.
		{name: "oversized headers", method: "GET", target: art, as: "publisher", headers: []string{"X-Padding", strings.Repeat("p", 1<<20+8192)}, status: 431, code: netHTTP},
		{name: "oversized bearer token", method: "GET", target: art, headers: []string{"Authorization", "Bearer " + strings.Repeat("t", 64<<10)}, status: 401, code: "UNAUTHORIZED"},
		{name: "bearer token with SQL", method: "GET", target: art, headers: []string{"Authorization", "Bearer ' OR '1'='1"}, status: 401, code: "UNAUTHORIZED"},
		{name: "Basic credentials not base64", method: "GET", target: "/v2/payments/web/tags/list", headers: []string{"Authorization", "Basic %%%"}, status: 401, code: "UNAUTHORIZED"},
		{name: "Basic credentials with SQL", method: "GET", target: "/v2/payments/web/tags/list", headers: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin' --:' OR '1'='1"))}, status: 401, code: "UNAUTHORIZED"},
		{name: "Range past the end", method: "GET", target: art + "/content", as: "publisher", headers: []string{"Range", "bytes=99999999-"}, status: 416, code: "RANGE_INVALID"},
		{name: "Range of an empty suffix", method: "GET", target: art + "/content", as: "publisher", headers: []string{"Range", "bytes=-0"}, status: 416, code: "RANGE_INVALID"},
		{name: "OCI Range of an empty suffix", method: "GET", target: "/v2/payments/web/blobs/" + e.image.layer.Digest.String(), as: "publisher", headers: []string{"Range", "bytes=-+0"}, status: 416, code: "RANGE_INVALID"},
		{name: "OCI Range past the end", method: "GET", target: "/v2/payments/web/blobs/" + e.image.layer.Digest.String(), as: "publisher", headers: []string{"Range", "bytes=" + strconv.Itoa(1<<30) + "-"}, status: 416, code: "RANGE_INVALID"},
	}

	cases = append(cases, jsonCases(t, []jsonEndpoint{
		{"token", "POST", "/api/v1/tokens", "admin", "MALFORMED", []byte(`{"name":"t-hostile","roles":["auditor"]}`)},
		{"trust key", "POST", "/api/v1/trust/keys", "admin", "MALFORMED", mustJSON(t, map[string]string{"id": "k-hostile", "publicKey": untrustedPEM, "comment": "c"})},
		{"trust policy", "PUT", "/api/v1/trust/policy", "admin", "POLICY_INVALID", []byte(ciPolicy)},
		{"new release", "POST", "/api/v1/releases", "rm", "MALFORMED", createBody("r-hostile", nil)},
		{"plan", "PUT", rel(e.planning) + "/plan", "rm", "MALFORMED", mustJSON(t, planBody("hostile"))},
		{"release artifacts", "PUT", rel(e.planning) + "/artifacts", "rm", "MALFORMED", mustJSON(t, artifactsBody())},
		{"approval", "POST", rel(e.planning) + "/approvals", "approver", "MALFORMED", mustJSON(t, map[string]string{"gate": "plan", "decision": "approve", "digest": e.planDigest, "comment": "ok"})},
		{"deployment", "POST", rel(e.released) + "/deployments", "deployer", "MALFORMED", []byte(`{"environment":"staging","target":"k8s","status":"in_progress"}`)},
		{"deployment update", "PATCH", rel(e.active) + "/deployments/" + e.activeDeployment, "deployer", "MALFORMED", []byte(`{"status":"succeeded"}`)},
		{"review", "POST", rel(e.planning) + "/review", "rm", "MALFORMED", []byte(`{"outcome":"successful","summary":"s","incidents":[],"objectivesMet":true}`)},
		{"cancel", "POST", rel(e.planning) + "/cancel", "rm", "MALFORMED", []byte(`{"reason":"r"}`)},
		{"gate defaults", "PUT", "/api/v1/settings/gates", "admin", "MALFORMED", []byte(`{"deploy:*":{"approvals":1}}`)},
		{"keyed signature", "POST", art + "/signatures", "publisher", "MALFORMED", keyedSignature("ci", []byte(sig))},
		{"attestation", "POST", art + "/attestations", "publisher", "MALFORMED", bytes.TrimSpace(dsse)},
		{"manifest", "PUT", "/v2/payments/web/manifests/json", "publisher", "MANIFEST_INVALID", e.image.manifest},
	})...)

	if len(cases) < 80 {
		t.Fatalf("only %d cases", len(cases))
	}
	t.Logf("%d hostile cases", len(cases))
	watch := observer{svc: e.svc}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := watch.capture(t)
			status, code, body := e.send(t, c)
			if status != c.status || code != c.code {
				pending := ""
				if c.pending != "" {
					pending = " (waits for " + c.pending + ")"
				}
				t.Errorf("%s %.100s: %d %s, want %d %s%s; body %.300s", c.method, c.target, status, code, c.status, c.code, pending, body)
			}
			if after := watch.capture(t); after != before {
				t.Fatalf("the request changed the server: %+v, before %+v", after, before)
			}
		})
	}
}

// signEnvelopeWith signs payload as a DSSE envelope of payloadType.
func signEnvelopeWith(t *testing.T, signer signature.Signer, payloadType string, payload []byte) []byte {
	t.Helper()
	env, err := sigdsse.WrapSigner(signer, payloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// editDSSE sets one field of a DSSE envelope.
func editDSSE(t *testing.T, env []byte, field string, value any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(env, &m); err != nil {
		t.Fatal(err)
	}
	m[field] = value
	return mustJSON(t, m)
}

// TestSQLMetacharactersAreData: free-text fields (change refs, titles,
// descriptions, comments, deployment targets and notes, review summaries,
// key comments) legitimately hold quotes, semicolons and comment markers;
// they are stored and returned byte for byte, and nothing else changes.
// (Identifiers with such characters are refused: TestHostileInput.)
func TestSQLMetacharactersAreData(t *testing.T) {
	e := newRelEnv(t, true)
	const sql = `x'); DROP TABLE releases; -- "quoted" /* c */ \ %_ ' OR '1'='1`
	r := e.create(t, nil)
	code, got, ev := e.send(t, http.MethodPut, e.releaseURL(r.Name)+"/plan", e.rm, map[string]any{
		"changeRef": "CHG-1 " + sql, "title": "T " + sql, "environments": []string{"staging"},
		// The risk is one of the admin's levels, not free text (RISK_INVALID).
		"plan": map[string]any{"description": sql, "backoutPlan": sql, "risk": "low"},
	})
	if code != http.StatusOK {
		t.Fatalf("plan: %d %+v", code, ev)
	}
	if got.Plan.ChangeRef != "CHG-1 "+sql || got.Plan.Description != sql {
		t.Errorf("plan came back as %+v", got.Plan)
	}
	code, _, ev = e.send(t, http.MethodPost, e.releaseURL(r.Name)+"/approvals", e.cab1, map[string]string{
		"gate": "plan", "decision": "approve", "digest": got.gate(t, "plan").ExpectedDigest, "comment": sql})
	if code != http.StatusOK {
		t.Fatalf("approve: %d %+v", code, ev)
	}
	var key struct {
		Comment string `json:"comment"`
	}
	if code := apiCall(t, http.MethodPost, e.url+"/api/v1/trust/keys", e.admin, mustJSON(t, map[string]string{"id": "k2", "publicKey": string(fixture(t, "untrusted/cosign.pub")), "comment": sql}), &key); code != http.StatusCreated || key.Comment != sql {
		t.Errorf("key: %d, comment %q", code, key.Comment)
	}
	// Read back from the database, not from the answer to the write.
	got = e.get(t, r.Name)
	if got.Plan.ChangeRef != "CHG-1 "+sql || len(got.Approvals) != 1 || got.Approvals[0].Comment != sql || got.State != "building" {
		t.Errorf("stored release: plan %+v, approvals %+v", got.Plan, got.Approvals)
	}
	var list struct {
		Releases []json.RawMessage `json:"releases"`
	}
	if code := apiCall(t, http.MethodGet, e.url+"/api/v1/releases", e.rm, nil, &list); code != http.StatusOK || len(list.Releases) != 1 {
		t.Errorf("releases: %d, %d of them; want the one", code, len(list.Releases))
	}
}
