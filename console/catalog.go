package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/releases/provenance"
	"github.com/dmlproject/dml/releases/trust"
	"github.com/dmlproject/dml/signing"
	"github.com/opencontainers/go-digest"
)

// The catalogue: a search by name prefix and state, one page at a time,
// and the artifact page — both digests, the evidence and who signed it,
// what the policy still wants, the receipt, the releases that include it
// and where it runs — with the download for those the API would serve.

const (
	// catalogPageSize is how many artifacts one page of the catalogue
	// shows.
	catalogPageSize = 50
	// catalogScanPage and catalogScanPages bound the reading one search
	// does: the catalogue filters by exact name only, so a prefix is
	// matched here over pages of the listing (catalogSearch). A search
	// that reads them all without filling its page offers to go on.
	catalogScanPage  = 100
	catalogScanPages = 5
	// sha512CacheSize bounds the remembered SHA-512 digests. Computing one
	// reads the whole artifact; the bytes behind a SHA-256 never change,
	// so neither does their SHA-512.
	sha512CacheSize = 4096
	// contentRoute names the download in the access log, as the access
	// matrix names the API's routes.
	contentRoute = Prefix + "artifacts/{name}/versions/{version}/content"
)

// catalogPages serves the catalogue. It remembers the SHA-512 digests it
// computed.
type catalogPages struct {
	c      *Console
	sha512 *digestCache
}

// routeCatalog registers the catalogue and the artifact page.
func (c *Console) routeCatalog(m *http.ServeMux) {
	cp := &catalogPages{c: c, sha512: newDigestCache(sha512CacheSize)}
	m.HandleFunc("GET "+Prefix+"artifacts", c.page(cp.list))
	m.HandleFunc("GET "+Prefix+"artifacts/{path...}", c.page(cp.artifactRoute))
}

// artifactPath is a parsed /ui/artifacts/ path: NAME/versions/VERSION,
// and optionally one of its downloads.
type artifactPath struct {
	Name, Version, Action string
}

// artifactActions are the downloads below an artifact's page.
var artifactActions = map[string]bool{"content": true, "receipt": true, "provenance": true}

// parseArtifactPath reads "payments/api/versions/1.4.2[/content]" as the
// API reads its paths: NAME/versions/VERSION first, so that a version
// named like an action is still a version.
func parseArtifactPath(p string) (artifactPath, bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	n := len(parts)
	if n >= 3 && parts[n-2] == "versions" {
		return artifactPath{Name: strings.Join(parts[:n-2], "/"), Version: parts[n-1]}, true
	}
	if n >= 4 && parts[n-3] == "versions" && artifactActions[parts[n-1]] {
		return artifactPath{Name: strings.Join(parts[:n-3], "/"), Version: parts[n-2], Action: parts[n-1]}, true
	}
	return artifactPath{}, false
}

// artifactHref is the console page of an artifact version.
func artifactHref(name, version string) string {
	return Prefix + "artifacts/" + name + "/versions/" + url.PathEscape(version)
}

// fileBase names the files of an artifact version as the CLI's examples
// do: payments/api 1.4.2 → payments-api-1.4.2.
func fileBase(name, version string) string {
	return strings.ReplaceAll(name, "/", "-") + "-" + version
}

// contentFilename is the name the download is saved under: the file base
// and the extension of its media type, when one is known.
func contentFilename(a catalog.Artifact) string {
	base := fileBase(a.Name, a.Version)
	switch mt, _, _ := mime.ParseMediaType(a.MediaType); mt {
	case "application/gzip", "application/x-gzip":
		return base + ".tar.gz"
	case "", "application/octet-stream":
		return base
	default:
		if exts, err := mime.ExtensionsByType(mt); err == nil && len(exts) > 0 {
			return base + exts[0]
		}
	}
	return base
}

// --- the catalogue ---

type catalogData struct {
	Prefix   string
	State    string
	States   []catalog.ArtifactState
	Rows     []catalogRow
	Searched bool
	// Next continues the listing; Partial says the search stopped after
	// reading its share of the catalogue without filling the page.
	Next    string
	Partial bool
	First   bool
}

type catalogRow struct {
	Href, Name, Version, State, Size, CreatedBy string
	Digest                                      digest.Digest
	CreatedAt                                   time.Time
	Retired                                     bool
}

// list shows one page of the catalogue.
func (cp *catalogPages) list(v *view) error {
	if err := v.require("artifact_list"); err != nil {
		return err
	}
	q := v.r.URL.Query()
	search := catalogSearch{
		Prefix: strings.ToLower(strings.TrimSpace(q.Get("name"))),
		State:  catalog.ArtifactState(q.Get("state")),
		After:  q.Get("after"),
	}
	if search.State != "" && !search.State.Valid() {
		return fmt.Errorf("%w: unknown state %q: choose admitted, quarantined or rejected", errdef.ErrInvalidInput, search.State)
	}
	if s := q.Get("skip"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > catalogScanPage {
			return fmt.Errorf("%w: skip must be between 0 and %d", errdef.ErrInvalidInput, catalogScanPage)
		}
		search.Skip = n
	}
	page, err := search.run(v.r.Context(), cp.c.dml.Catalog)
	if err != nil {
		return err
	}
	data := catalogData{
		Prefix: search.Prefix, State: string(search.State),
		States:   []catalog.ArtifactState{catalog.StateAdmitted, catalog.StateQuarantined, catalog.StateRejected},
		Searched: search.Prefix != "" || search.State != "",
		Partial:  page.Partial,
		First:    search.After == "",
	}
	for _, a := range page.Artifacts {
		data.Rows = append(data.Rows, catalogRow{
			Href: artifactHref(a.Name, a.Version), Name: a.Name, Version: a.Version, State: string(a.State),
			Size: formatSize(a.Size), CreatedBy: a.CreatedBy, Digest: a.Digest, CreatedAt: a.CreatedAt, Retired: a.RetiredAt != nil,
		})
	}
	if page.After != "" {
		next := url.Values{}
		if search.Prefix != "" {
			next.Set("name", search.Prefix)
		}
		if search.State != "" {
			next.Set("state", string(search.State))
		}
		next.Set("after", page.After)
		if page.Skip > 0 {
			next.Set("skip", strconv.Itoa(page.Skip))
		}
		data.Next = Prefix + "artifacts?" + next.Encode()
	}
	return v.render(http.StatusOK, "catalog", "Catalogue", data)
}

// catalogSearch is one page of a search of the catalogue: the artifacts
// whose name starts with Prefix, in State, from a position in the
// listing: After (the listing's cursor, "" for the start) and Skip
// matches of the listing's page there that earlier pages showed.
type catalogSearch struct {
	Prefix string
	State  catalog.ArtifactState
	After  string
	Skip   int
}

// catalogPage is what a search found, and where the next page starts
// (After "" when nothing is left).
type catalogPage struct {
	Artifacts []catalog.Artifact
	After     string
	Skip      int
	Partial   bool
}

// catalogLister is the listing the search reads (catalog.Service).
type catalogLister interface {
	Artifacts(ctx context.Context, f catalog.ArtifactFilter) ([]catalog.Artifact, string, error)
}

// run reads the listing, filtered by state there and by prefix here,
// until the page is full, the listing ends or catalogScanPages pages were
// read. The listing is ordered by name byte by byte (both SQL dialects
// compare names as bytes), so the names with a prefix are one run of it:
// the first name past the prefix ends the search.
func (s catalogSearch) run(ctx context.Context, cat catalogLister) (catalogPage, error) {
	var out catalogPage
	after, skip := s.After, s.Skip
	for range catalogScanPages {
		list, next, err := cat.Artifacts(ctx, catalog.ArtifactFilter{State: s.State, Limit: catalogScanPage, Cursor: after})
		if err != nil {
			return catalogPage{}, err
		}
		matched, past := 0, false
		for _, a := range list {
			if !strings.HasPrefix(a.Name, s.Prefix) {
				if a.Name > s.Prefix {
					past = true
					break
				}
				continue
			}
			matched++
			if matched <= skip {
				continue
			}
			if len(out.Artifacts) == catalogPageSize {
				// One more match: the next page starts with it.
				out.After, out.Skip = after, matched-1
				return out, nil
			}
			out.Artifacts = append(out.Artifacts, a)
		}
		if past || next == "" {
			return out, nil
		}
		after, skip = next, 0
	}
	out.After, out.Partial = after, len(out.Artifacts) < catalogPageSize
	return out, nil
}

// --- the artifact page ---

type artifactData struct {
	A          catalog.Artifact
	Href       string
	Size       string
	SHA512     digest.Digest
	SHA512Err  string
	Retired    bool
	Evidence   []evidenceRow
	Unmet      []string
	Receipt    *receiptView
	Releases   []releaseRow
	Running    []runningRow
	Deployed   []deploymentRow
	Download   downloadOffer
	Provenance *provenanceOffer
}

type evidenceRow struct {
	Digest   digest.Digest
	Kind     string
	What     string
	Format   string
	Result   string
	Signer   string
	Keyless  *signing.KeylessSigner
	Note     string
	Counts   bool
	Verified string
}

type receiptView struct {
	Verified bool
	Problem  string
	Admitted signing.Admission
	JSON     string
	Href     string
}

type releaseRow struct {
	Name, Href, State, ChangeRef, Title string
}

type runningRow struct {
	Environment, Release, ReleaseHref string
	Since                             time.Time
}

type deploymentRow struct {
	Environment, Release, ReleaseHref, Target, Status, By, Now string
	At                                                         time.Time
}

type downloadOffer struct {
	Allowed        bool
	Why            string
	Href, Filename string
}

type provenanceOffer struct {
	Href, File, Command string
}

// artifactRoute dispatches the artifact page and its downloads.
func (cp *catalogPages) artifactRoute(v *view) error {
	ref, ok := parseArtifactPath(v.r.PathValue("path"))
	if !ok {
		return v.notFound()
	}
	switch ref.Action {
	case "content":
		return cp.content(v, ref)
	case "receipt":
		return cp.receipt(v, ref)
	case "provenance":
		return cp.c.provenance(v, ref.Name, ref.Version)
	}
	return cp.artifact(v, ref)
}

func (cp *catalogPages) artifact(v *view, ref artifactPath) error {
	if err := v.require("artifact_get"); err != nil {
		return err
	}
	ctx := v.r.Context()
	d := cp.c.dml
	a, err := d.Catalog.Artifact(ctx, ref.Name, ref.Version)
	if err != nil {
		return err
	}
	href := artifactHref(a.Name, a.Version)
	data := artifactData{A: a, Href: href, Size: formatSize(a.Size), Retired: a.RetiredAt != nil}
	if data.SHA512, err = cp.sha512Of(ctx, v.p, a); err != nil {
		cp.c.log.Warn("console: sha512 of an artifact", "name", a.Name, "version", a.Version, "err", err)
		data.SHA512Err = "could not be computed: " + err.Error()
	}
	if a.Admission != nil {
		for _, u := range a.Admission.Unmet {
			data.Unmet = append(data.Unmet, plainUnmet(u))
		}
		if len(a.Admission.Receipt) > 0 {
			data.Receipt = readReceipt(d.ServerPublicKeyPEM(), a, href+"/receipt")
		}
	}
	if v.can("evidence_list") {
		if data.Evidence, err = cp.evidence(ctx, a); err != nil {
			return err
		}
	}
	if v.can("release_list") {
		if err := cp.releases(ctx, a, &data); err != nil {
			return err
		}
	}
	data.Download = cp.downloadOffer(ctx, v, a, href)
	if v.can("provenance_get") {
		data.Provenance = newProvenanceOffer(a, href+"/provenance", data.Download.Allowed)
	}
	return v.render(http.StatusOK, "artifact", a.Name+" "+a.Version, data)
}

// sha512Of returns the artifact's SHA-512, reading its content once.
func (cp *catalogPages) sha512Of(ctx context.Context, p access.Principal, a catalog.Artifact) (digest.Digest, error) {
	if d, ok := cp.sha512.get(a.Digest); ok {
		return d, nil
	}
	d, err := cp.c.dml.Catalog.SHA512(ctx, p.Actor(), a)
	if err != nil {
		return "", err
	}
	cp.sha512.put(a.Digest, d)
	return d, nil
}

// evidence describes each piece: what it is, who signed it and whether it
// counted for the admission decision. Every stored piece was verified
// when it was presented (catalog.AddEvidence refuses what does not
// verify); a signer revoked since is named.
func (cp *catalogPages) evidence(ctx context.Context, a catalog.Artifact) ([]evidenceRow, error) {
	d := cp.c.dml
	list, err := d.Catalog.ListEvidence(ctx, a.Name, a.Version)
	if err != nil {
		return nil, err
	}
	keys, err := d.Trust.TrustKeys(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := d.Trust.Identities(ctx)
	if err != nil {
		return nil, err
	}
	var counted []digest.Digest
	if a.Admission != nil {
		counted = a.Admission.Evidence
	}
	rows := make([]evidenceRow, 0, len(list))
	for _, e := range list {
		r := evidenceRow{
			Digest: e.Digest, Kind: string(e.Kind), Format: formatNames[e.Format], Keyless: e.Keyless,
			Counts:   slices.Contains(counted, e.Digest),
			Verified: "when " + e.CreatedBy + " presented it, " + e.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"),
		}
		if r.Format == "" {
			r.Format = e.Format
		}
		r.What = "Signature"
		if e.Kind == catalog.EvidenceAttestation {
			r.What, r.Result = describePredicate(e.PredicateType, e.Predicate)
		}
		if e.Keyless != nil {
			r.Signer = "identity " + e.KeyID
			if i := slices.IndexFunc(ids, func(i trust.Identity) bool { return i.ID == e.KeyID }); i >= 0 && ids[i].RevokedAt != nil {
				r.Note = "identity revoked " + ids[i].RevokedAt.UTC().Format("2006-01-02 15:04 UTC") + " by " + ids[i].RevokedBy
			}
		} else {
			r.Signer = "key " + e.KeyID
			if i := slices.IndexFunc(keys, func(k trust.TrustKey) bool { return k.ID == e.KeyID }); i >= 0 {
				if k := keys[i]; k.RevokedAt != nil {
					r.Note = "key revoked " + k.RevokedAt.UTC().Format("2006-01-02 15:04 UTC") + " by " + k.RevokedBy
				} else if k.Comment != "" {
					r.Note = k.Comment
				}
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// formatNames say how a piece of evidence arrived.
var formatNames = map[string]string{
	"signature":                    "cosign sign-blob signature",
	"sigstore-bundle":              "Sigstore bundle",
	"dsse":                         "DSSE envelope",
	"cosign-oci-signature":         "cosign signature in the OCI registry",
	"cosign-oci-keyless-signature": "keyless cosign signature in the OCI registry",
}

// describePredicate names an attestation's predicate and what it says.
func describePredicate(predicateType string, predicate json.RawMessage) (what, result string) {
	switch predicateType {
	case signing.PredicateTestResult:
		tr, _ := signing.ParseTestResult(predicate)
		result = "result " + tr.Result
		if len(tr.PassedTests) > 0 {
			result += "; passed: " + strings.Join(tr.PassedTests, ", ")
		}
		if len(tr.FailedTests) > 0 {
			result += "; failed: " + strings.Join(tr.FailedTests, ", ")
		}
		return "Test results", result
	case signing.PredicateSLSAProvenanceV1, signing.PredicateSLSAProvenanceV02:
		builder, _ := signing.SLSABuilderID(predicateType, predicate)
		if builder != "" {
			result = "built by " + builder
		}
		return "SLSA build provenance", result
	}
	return "Attestation " + predicateType, ""
}

// The policy's unmet requirements come in two shapes (signing.Evaluate);
// plainUnmet rewords them for people, and leaves anything else as it is.
var (
	unmetSignature   = regexp.MustCompile(`^signature: (\d+) of (\d+) required signers \(keys: ([^)]*)\)(.*)$`)
	unmetAttestation = regexp.MustCompile(`^attestation (\S+) from (?:key|one of keys) ([^:(]+?)(?:: (.*?))?( \(not counted: .*\))?$`)
)

// plainUnmet says what an artifact still needs in words.
func plainUnmet(u string) string {
	if m := unmetSignature.FindStringSubmatch(u); m != nil {
		need, _ := strconv.Atoi(m[2])
		have, _ := strconv.Atoi(m[1])
		who := "the trusted signer " + m[3]
		if strings.Contains(m[3], ",") {
			who = fmt.Sprintf("%d of the trusted signers %s", need, m[3])
		}
		return fmt.Sprintf("A signature by %s is needed (%d of %d so far).", who, have, need) + inactiveNote(m[4])
	}
	if m := unmetAttestation.FindStringSubmatch(u); m != nil {
		what := "Attestations of type " + m[1]
		switch m[1] {
		case signing.PredicateTestResult:
			what = "Passing test results"
		case signing.PredicateSLSAProvenanceV1, signing.PredicateSLSAProvenanceV02:
			what = "SLSA build provenance"
		}
		who := "the trusted signer " + m[2]
		if strings.Contains(m[2], ",") {
			who = "one of the trusted signers " + m[2]
		}
		s := fmt.Sprintf("%s, attested by %s, are needed.", what, who)
		if m[3] != "" {
			s += " What was presented: " + m[3] + "."
		}
		return s + inactiveNote(m[4])
	}
	return u
}

var unmetInactive = regexp.MustCompile(`^ ?\(not counted: keys? (.*) inactive\)$`)

// inactiveNote rewords Evaluate's note on evidence whose key is no longer
// trusted.
func inactiveNote(note string) string {
	if note == "" {
		return ""
	}
	if m := unmetInactive.FindStringSubmatch(note); m != nil {
		return " Evidence signed by " + m[1] + " does not count: no longer trusted."
	}
	return " " + strings.TrimSpace(note)
}

// readReceipt checks the admission receipt with the server's public key
// and reads what it says.
func readReceipt(serverKey []byte, a catalog.Artifact, href string) *receiptView {
	rv := &receiptView{Href: href, JSON: indentJSON(a.Admission.Receipt)}
	st, err := signing.VerifyReceipt(serverKey, a.Admission.Receipt, a.Digest)
	if err != nil {
		rv.Problem = err.Error()
		return rv
	}
	if err := json.Unmarshal(st.Predicate, &rv.Admitted); err != nil {
		rv.Problem = "the receipt's predicate does not read as an admission: " + err.Error()
		return rv
	}
	rv.Verified = true
	return rv
}

// releases fills the releases that include the artifact and where they
// deployed it. An artifact runs in an environment when the latest
// succeeded deployment there of a release with its name carried this
// version.
func (cp *catalogPages) releases(ctx context.Context, a catalog.Artifact, data *artifactData) error {
	type latest struct {
		release, version string
		at               time.Time
	}
	current := map[string]latest{}
	var with []lifecycle.Release
	err := allReleases(ctx, cp.c.dml.Releases, func(r lifecycle.Release) {
		version := ""
		for _, ra := range r.Artifacts {
			if ra.Name == a.Name {
				version = ra.Version
				break
			}
		}
		if version == "" {
			return
		}
		if version == a.Version {
			with = append(with, r)
		}
		for _, dep := range r.Deployments {
			at := deployedAt(dep)
			if dep.Status == lifecycle.DeploymentSucceeded && at.After(current[dep.Environment].at) {
				current[dep.Environment] = latest{r.Name, version, at}
			}
		}
	})
	if err != nil {
		return err
	}
	for _, r := range with {
		rh := Prefix + "releases/" + r.Name
		data.Releases = append(data.Releases, releaseRow{Name: r.Name, Href: rh, State: string(r.State), ChangeRef: r.Plan.ChangeRef, Title: r.Plan.Title})
		for _, dep := range r.Deployments {
			row := deploymentRow{Environment: dep.Environment, Release: r.Name, ReleaseHref: rh, Target: dep.Target,
				Status: string(dep.Status), By: dep.By, At: deployedAt(dep)}
			if cur, ok := current[dep.Environment]; ok && dep.Status == lifecycle.DeploymentSucceeded {
				switch {
				case cur.release == r.Name && cur.at.Equal(row.At):
					row.Now = "running now"
				case cur.version != a.Version:
					row.Now = "replaced by " + cur.version + " (release " + cur.release + ")"
				}
			}
			data.Deployed = append(data.Deployed, row)
		}
	}
	for env, cur := range current {
		if cur.version == a.Version {
			data.Running = append(data.Running, runningRow{Environment: env, Release: cur.release, ReleaseHref: Prefix + "releases/" + cur.release, Since: cur.at})
		}
	}
	slices.SortFunc(data.Running, func(x, y runningRow) int { return strings.Compare(x.Environment, y.Environment) })
	slices.SortStableFunc(data.Deployed, func(x, y deploymentRow) int { return y.At.Compare(x.At) })
	return nil
}

// deployedAt is when a deployment reached its status.
func deployedAt(d lifecycle.Deployment) time.Time {
	if d.FinishedAt != nil {
		return *d.FinishedAt
	}
	return d.StartedAt
}

// allReleases calls fn for every release, a page at a time. The release
// lifecycle offers no query by artifact to its callers, so the console
// reads the list as the releases board does.
func allReleases(ctx context.Context, rs *lifecycle.Service, fn func(lifecycle.Release)) error {
	cursor := ""
	for {
		list, next, err := rs.Releases(ctx, lifecycle.ReleaseFilter{Limit: names.MaxPageSize, Cursor: cursor})
		if err != nil {
			return err
		}
		for _, r := range list {
			fn(r)
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// downloadOffer decides whether the page offers the download: the access
// matrix must let the principal call the API's content route, and the
// catalogue must let it read these bytes (admitted content; a deployer's
// environments), exactly as the API decides.
func (cp *catalogPages) downloadOffer(ctx context.Context, v *view, a catalog.Artifact, href string) downloadOffer {
	if !v.can("content_get") {
		return downloadOffer{Why: "Your roles may not download content."}
	}
	if err := cp.c.dml.Catalog.AuthorizeRead(ctx, v.p, a); err != nil {
		return downloadOffer{Why: "You may not download it: " + err.Error() + "."}
	}
	return downloadOffer{Allowed: true, Href: href + "/content", Filename: contentFilename(a)}
}

func newProvenanceOffer(a catalog.Artifact, href string, withContent bool) *provenanceOffer {
	file := fileBase(a.Name, a.Version) + ".provenance.json"
	cmd := "dml provenance verify " + file + " --log-key log.key --server-key server.pub"
	if withContent {
		cmd += " --content-file " + contentFilename(a)
	}
	return &provenanceOffer{Href: href, File: file, Command: cmd}
}

// --- downloads ---

// content serves the artifact's bytes as the API's content route does:
// the same authorisation (the access matrix, then
// catalog.Service.OpenContent), a whole read verified against the digest
// that never delivers the last byte of corrupt content, and the same
// access log record — every download, refusal and failure, with who and
// what. It is a download for a person: always the whole file (no
// ranges), as an attachment that no browser renders.
func (cp *catalogPages) content(v *view, ref artifactPath) error {
	rec := audit.AccessRecord{
		Principal: v.p.Name, TokenID: v.p.TokenID, Method: v.r.Method, Route: contentRoute, Path: v.r.URL.Path,
		Remote: v.r.RemoteAddr, Subject: ref.Name + ":" + ref.Version, Name: ref.Name, Version: ref.Version,
	}
	refuse := func(err error) error {
		status, code := cp.c.describe(err)
		switch {
		case status == http.StatusForbidden:
			rec.Outcome = audit.AccessDenied
		case status == http.StatusConflict:
			rec.Outcome = audit.AccessConflict
		case status < 500:
			return err // the API records neither a 404 nor a 400
		default:
			rec.Outcome = audit.AccessFailed
		}
		rec.Status, rec.Code, rec.Message = status, code, err.Error()
		cp.c.recordAccess(v.r.Context(), rec)
		return err
	}
	if err := v.require("content_get"); err != nil {
		return refuse(err)
	}
	content, err := cp.c.dml.Catalog.OpenContent(v.r.Context(), v.p, ref.Name, ref.Version)
	if err != nil {
		return refuse(err)
	}
	b := content.Reader
	defer b.Close()
	h := v.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": contentFilename(content.Artifact)}))
	h.Set("Content-Length", strconv.FormatInt(b.Size(), 10))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Docker-Content-Digest", b.Digest().String())
	h.Set("Cache-Control", "no-store")
	if v.r.Method == http.MethodHead {
		// What a download would be, without reading it: not a download,
		// and the API records its content HEADs no more.
		return nil
	}
	w := &countingWriter{w: v.w}
	_, err = io.Copy(w, b)
	if err == nil {
		err = b.Err()
	}
	rec.Digest = b.Digest()
	if err != nil && w.n == 0 && !w.wrote {
		// Nothing is out yet: the error page can still replace it.
		for _, k := range []string{"Content-Type", "Content-Disposition", "Content-Length", "Docker-Content-Digest", "Content-Security-Policy"} {
			h.Del(k)
		}
		rec.Digest = ""
		return refuse(err)
	}
	rec.Status, rec.Outcome = http.StatusOK, audit.AccessServed
	if err != nil || w.n < b.Size() {
		rec.Outcome = audit.AccessAborted
		cp.c.recordAccess(v.r.Context(), rec)
		cp.c.log.Warn("console: download cut short", "path", rec.Path, "digest", rec.Digest, "sent", w.n, "err", err)
		// The client's body ends short of its Content-Length: break the
		// connection so that it knows.
		panic(http.ErrAbortHandler)
	}
	cp.c.recordAccess(v.r.Context(), rec)
	return nil
}

// countingWriter counts what reached the client.
type countingWriter struct {
	w     http.ResponseWriter
	n     int64
	wrote bool
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.wrote = true
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// accessRecordTimeout bounds the database write of one access record,
// which runs detached from a request that may be gone.
const accessRecordTimeout = 5 * time.Second

// recordAccess writes an access log record as the API's access log does:
// to the structured log (log=access) and to the database, where auditors
// read it.
func (c *Console) recordAccess(ctx context.Context, r audit.AccessRecord) {
	c.log.Info("access", "log", "access", "outcome", r.Outcome, "status", r.Status, "method", r.Method, "route", r.Route,
		"path", r.Path, "principal", r.Principal, "tokenId", r.TokenID, "subject", r.Subject, "name", r.Name,
		"version", r.Version, "digest", r.Digest, "remote", r.Remote)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), accessRecordTimeout)
	defer cancel()
	if err := c.dml.Audit.RecordAccess(ctx, r); err != nil {
		c.log.Error("console: recording access in the database failed", "path", r.Path, "err", err)
	}
}

// receipt serves the admission receipt, the DSSE envelope the server
// signed, as a file (the API serves it inside the artifact's metadata).
func (cp *catalogPages) receipt(v *view, ref artifactPath) error {
	if err := v.require("artifact_get"); err != nil {
		return err
	}
	a, err := cp.c.dml.Catalog.Artifact(v.r.Context(), ref.Name, ref.Version)
	if err != nil {
		return err
	}
	if a.Admission == nil || len(a.Admission.Receipt) == 0 {
		return fmt.Errorf("%w: %s:%s has no admission receipt (it is %s)", errdef.ErrNotFound, a.Name, a.Version, a.State)
	}
	return attachment(v.w, fileBase(a.Name, a.Version)+".receipt.json", "application/json", append(slices.Clone(a.Admission.Receipt), '\n'))
}

// provenance serves the provenance document of an artifact version, as
// the API's provenance route does, for dml provenance verify.
func (c *Console) provenance(v *view, name, version string) error {
	if err := v.require("provenance_get"); err != nil {
		return err
	}
	src, err := c.dml.Provenance.Sources(v.r.Context(), v.p, name, version)
	if err != nil {
		return err
	}
	doc, err := provenance.Build(src)
	if err != nil {
		return err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return attachment(v.w, fileBase(name, version)+".provenance.json", "application/json", append(b, '\n'))
}

// attachment answers a file to save.
func attachment(w http.ResponseWriter, filename, contentType string, body []byte) error {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	_, err := w.Write(body)
	return err
}

// --- helpers ---

// formatSize says a size in bytes for people.
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// indentJSON is raw JSON indented for reading, its keys in their order,
// or the raw text when it does not parse.
func indentJSON(raw []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return string(raw)
	}
	return out.String()
}

// digestCache remembers a bounded number of digests by digest; when full,
// it forgets everything and starts again, which is simple and bounds the
// memory.
type digestCache struct {
	mu  sync.Mutex
	max int
	m   map[digest.Digest]digest.Digest
}

func newDigestCache(max int) *digestCache {
	return &digestCache{max: max, m: map[digest.Digest]digest.Digest{}}
}

func (c *digestCache) get(k digest.Digest) (digest.Digest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[k]
	return d, ok
}

func (c *digestCache) put(k, d digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = d
}
