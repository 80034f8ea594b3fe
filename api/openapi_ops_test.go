package api

import (
	"net/http"
	"reflect"

	"github.com/dmlproject/dml/api/wire"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/provenance"
	"github.com/dmlproject/dml/signing"
)

// The operations of /api/v1 as openapi.json describes them, by the
// operation name of their row in the access matrix (authz.go). The matrix
// gives each one's method, path and roles; this table adds what a client
// needs besides: parameters, bodies, answers and error codes. Schemas are
// reflected from the Go types named here (openapi_schema_test.go), so a
// field added to a wire type appears by itself after `go generate ./api`.
//
// To describe a new route: add its row to the access matrix, an entry
// here, and run `go generate ./api` (docs/api.md says more).
//
// Errors: list the codes of errorTable (errors.go) the route can answer
// beyond those every route of its kind can (commonErrors adds 401, 403,
// 500, and for routes with a body 400 MALFORMED, 408 and 413). The
// response test fails when a request it makes is answered with a code
// this table does not list.
var operations = map[string]opDoc{
	"openapi_get": {
		Summary:     "This document",
		Description: "The OpenAPI 3.1 description of /api/v1, as embedded in the server. No token is needed: it describes the API and holds nothing else.",
		Answers:     []answerDoc{raw(http.StatusOK, "application/json", "The OpenAPI document.")},
	},

	// Artifacts.
	"artifact_list": {
		Summary:     "List artifact versions",
		Description: "One page of artifact versions, ordered by name and version.",
		Query: []paramDoc{
			{Name: "name", Type: "string", Description: "Only versions of this artifact (an exact name)."},
			{Name: "state", Type: "string", Description: "quarantined, admitted or rejected."},
			{Name: "cursor", Type: "string", Description: "The `nextCursor` of the previous page."},
			{Name: "limit", Type: "integer", Description: "Page size (at least 1)."},
		},
		Answers: []answerDoc{jsonAnswer[wire.ArtifactPage](http.StatusOK, "A page of artifact versions.")},
		Errors:  []string{"INVALID_INPUT", "NAME_INVALID"},
	},
	"artifact_push": {
		Summary: "Push an artifact version",
		Description: "Stores the request body as the artifact version's content. The content is hashed while it streams and kept only if " +
			"its digest (and `X-Checksum-Sha256`, when sent) and size (`Content-Length`) hold. The version starts quarantined " +
			"unless the trust policy admits it. Pushing the same bytes again is answered 200; other bytes under the same version 409 " +
			"VERSION_EXISTS, whose detail names the stored digest.",
		Headers: []paramDoc{
			{Name: "X-Checksum-Sha256", Type: "string", Description: "The content's SHA-256, 64 hex characters; the push fails unless it matches."},
			{Name: "Content-Type", Type: "string", Description: "The artifact's media type (stored and served back)."},
		},
		Body: &bodyDoc{Content: "application/octet-stream", Description: "The artifact's bytes.", Binary: true},
		Answers: []answerDoc{
			jsonAnswer[wire.Artifact](http.StatusCreated, "Stored; Location names the version.").withHeader("Location", "The version's URL path."),
			jsonAnswer[wire.Artifact](http.StatusOK, "The same bytes were already stored under this version."),
		},
		Errors: []string{"NAME_INVALID", "VERSION_INVALID", "MEDIA_TYPE_INVALID", "DIGEST_INVALID", "SIZE_INVALID", "VERSION_EXISTS",
			"QUOTA_EXCEEDED", "INVALID_INPUT", "CONFLICT", "STORAGE_UNAVAILABLE", "INSUFFICIENT_STORAGE"},
	},
	"artifact_get": {
		Summary: "Get an artifact version",
		Answers: []answerDoc{jsonAnswer[wire.Artifact](http.StatusOK, "The artifact version and its admission decision.")},
		Errors:  []string{"NOT_FOUND", "NAME_INVALID", "VERSION_INVALID"},
	},
	"artifact_head": {
		Summary: "Check that an artifact version exists",
		Answers: []answerDoc{headAnswer(http.StatusOK, "The artifact version exists.")},
		Errors:  []string{"NOT_FOUND", "NAME_INVALID", "VERSION_INVALID"},
	},
	"content_get": {
		Summary: "Download an artifact's content",
		Description: "The stored bytes with the media type they were pushed with, verified against their digest as they stream " +
			"(a blob found corrupt is answered 500 BLOB_CORRUPT, never served). Range, If-Range and If-None-Match are honoured; " +
			"ETag and Docker-Content-Digest carry the digest.",
		Headers: contentRequestHeaders,
		Answers: contentAnswers("The artifact's content."),
		Errors:  []string{"NOT_FOUND", "NOT_ADMITTED", "NAME_INVALID", "VERSION_INVALID", "BLOB_UNKNOWN", "BLOB_CORRUPT", "RANGE_INVALID", "PRECONDITION_FAILED", "STORAGE_UNAVAILABLE"},
	},
	"content_head": {
		Summary: "Check an artifact's content",
		Headers: contentRequestHeaders,
		Answers: []answerDoc{headAnswer(http.StatusOK, "The content's headers: Content-Length, ETag, Docker-Content-Digest."), headAnswer(http.StatusNotModified, "If-None-Match matched.")},
		Errors:  []string{"NOT_FOUND", "NOT_ADMITTED", "NAME_INVALID", "VERSION_INVALID", "BLOB_UNKNOWN", "STORAGE_UNAVAILABLE"},
	},
	"artifact_retire": {
		Summary:     "Retire an artifact version",
		Description: "The version stays, but no new release may include it.",
		Answers:     []answerDoc{jsonAnswer[wire.Artifact](http.StatusOK, "The retired version.")},
		Errors:      []string{"NOT_FOUND", "NAME_INVALID", "VERSION_INVALID", "ARTIFACT_RETIRED", "CONFLICT"},
	},
	"provenance_get": {
		Summary: "Export an artifact version's provenance",
		Description: "A provenance document: the artifact, the evidence and the keys, roots and identities it was verified with, " +
			"the admission, the releases that shipped it, and the audit log records and proofs that bind them. `dml provenance " +
			"verify` checks it offline (docs/audit.md).",
		Answers: []answerDoc{jsonAnswer[provenance.Document](http.StatusOK, "The provenance document.")},
		Errors:  []string{"NOT_FOUND", "NAME_INVALID", "VERSION_INVALID", "BLOB_UNKNOWN", "BLOB_CORRUPT"},
	},

	// Evidence.
	"evidence_add_signature": {
		Summary: "Add a signature",
		Description: "A signature over the artifact: `{\"keyId\",\"signature\"}` (a base64 signature by a trusted key), or a Sigstore " +
			"bundle (keyless). It is verified before it is stored; a refusal says why in its detail (VerificationDetail). The " +
			"trust policy is then applied again, which may admit the version.",
		Body:    &bodyDoc{Content: "application/json", Description: "A keyed signature or a Sigstore bundle (docs/signing.md).", Any: true},
		Answers: []answerDoc{jsonAnswer[wire.EvidenceAdded](http.StatusCreated, "The evidence stored and the artifact's new admission.")},
		Errors:  evidenceErrors,
	},
	"evidence_add_attestation": {
		Summary:     "Add an attestation",
		Description: "An in-toto statement in a DSSE envelope signed by a trusted key, or in a Sigstore bundle. Verified, stored, and the trust policy applied again.",
		Body:        &bodyDoc{Content: "application/json", Description: "A DSSE envelope or a Sigstore bundle (docs/signing.md).", Any: true},
		Answers:     []answerDoc{jsonAnswer[wire.EvidenceAdded](http.StatusCreated, "The evidence stored and the artifact's new admission.")},
		Errors:      evidenceErrors,
	},
	"evidence_list": {
		Summary: "List an artifact version's evidence",
		Answers: []answerDoc{jsonAnswer[wire.EvidenceList](http.StatusOK, "The evidence, oldest first.")},
		Errors:  []string{"NOT_FOUND", "NAME_INVALID", "VERSION_INVALID"},
	},
	"evidence_get": {
		Summary: "Download one piece of evidence",
		Headers: contentRequestHeaders,
		Answers: contentAnswers("The evidence as it was sent."),
		Errors:  []string{"NOT_FOUND", "DIGEST_INVALID", "NAME_INVALID", "VERSION_INVALID", "BLOB_UNKNOWN", "BLOB_CORRUPT", "RANGE_INVALID", "PRECONDITION_FAILED", "STORAGE_UNAVAILABLE"},
	},
	"evidence_head": {
		Summary: "Check one piece of evidence",
		Headers: contentRequestHeaders,
		Answers: []answerDoc{headAnswer(http.StatusOK, "The evidence's headers."), headAnswer(http.StatusNotModified, "If-None-Match matched.")},
		Errors:  []string{"NOT_FOUND", "DIGEST_INVALID", "NAME_INVALID", "VERSION_INVALID", "BLOB_UNKNOWN", "STORAGE_UNAVAILABLE"},
	},

	// Trust.
	"server_key_get": {
		Summary:     "The server's public key",
		Description: "The PEM public key that signs admission receipts and release manifests.",
		Answers:     []answerDoc{raw(http.StatusOK, "application/x-pem-file", "The PEM public key.")},
	},
	"trust_key_list": {
		Summary: "List trusted keys",
		Answers: []answerDoc{jsonAnswer[wire.TrustKeyList](http.StatusOK, "Every trusted key, revoked ones included.")},
	},
	"trust_key_add": {
		Summary: "Trust a public key",
		Body:    jsonBody[wire.TrustKeyRequest]("The key's ID and PEM."),
		Answers: []answerDoc{jsonAnswer[wire.TrustKey](http.StatusCreated, "The key as trusted.")},
		Errors:  []string{"KEY_EXISTS", "INVALID_INPUT"},
	},
	"trust_key_revoke": {
		Summary: "Revoke a trusted key",
		Answers: []answerDoc{noContent("Revoked.")},
		Errors:  []string{"NOT_FOUND", "CONFLICT"},
	},
	"trust_policy_get": {
		Summary: "Get the trust policy",
		Answers: []answerDoc{jsonAnswer[wire.TrustPolicy](http.StatusOK, "The current trust policy version.")},
		Errors:  []string{"NOT_FOUND"},
	},
	"trust_policy_set": {
		Summary: "Set the trust policy",
		Description: "Stores a new version of the trust policy (docs/signing.md) and decides the quarantined versions again. The " +
			"document may also be sent as YAML (the server reads either, whatever the Content-Type); it is stored as canonical JSON.",
		Body:    &bodyDoc{Content: "application/json", Description: "The trust policy document.", Type: reflect.TypeFor[signing.Policy](), Example: `{"rules":[{"match":"payments/**","signatures":{"keys":["ci"]}}]}`},
		Answers: []answerDoc{jsonAnswer[wire.TrustPolicy](http.StatusOK, "The new policy version.")},
		Errors:  []string{"POLICY_INVALID", "INVALID_INPUT"},
	},
	"trust_root_list": {
		Summary: "List Sigstore trusted roots",
		Answers: []answerDoc{jsonAnswer[wire.TrustedRootList](http.StatusOK, "Every trusted root, without its document.")},
	},
	"trust_root_get": {
		Summary: "Get a Sigstore trusted root",
		Answers: []answerDoc{jsonAnswer[wire.TrustedRoot](http.StatusOK, "The root with its document.")},
		Errors:  []string{"NOT_FOUND"},
	},
	"trust_root_put": {
		Summary:     "Install a Sigstore trusted root",
		Description: "Installs (201) or updates (200, a new version) a trusted_root.json.",
		Body:        &bodyDoc{Content: "application/json", Description: "A Sigstore trusted_root.json.", Any: true},
		Answers: []answerDoc{
			jsonAnswer[wire.TrustedRoot](http.StatusCreated, "Installed."),
			jsonAnswer[wire.TrustedRoot](http.StatusOK, "Updated, or unchanged."),
		},
		Errors: []string{"ROOT_INVALID", "ROOT_REVOKED", "INVALID_INPUT", "CONFLICT"},
	},
	"trust_root_revoke": {
		Summary: "Revoke a Sigstore trusted root",
		Answers: []answerDoc{noContent("Revoked.")},
		Errors:  []string{"NOT_FOUND", "CONFLICT"},
	},
	"trust_identity_list": {
		Summary: "List trusted signer identities",
		Answers: []answerDoc{jsonAnswer[wire.SignerIdentityList](http.StatusOK, "Every identity, revoked ones included.")},
	},
	"trust_identity_add": {
		Summary: "Trust a signer identity",
		Body:    jsonBody[wire.SignerIdentityRequest]("The identity: root, issuer, subject (or subject pattern), claims."),
		Answers: []answerDoc{jsonAnswer[wire.SignerIdentity](http.StatusCreated, "The identity as trusted.")},
		Errors:  []string{"IDENTITY_EXISTS", "ROOT_UNKNOWN", "ROOT_REVOKED", "INVALID_INPUT"},
	},
	"trust_identity_revoke": {
		Summary: "Revoke a signer identity",
		Answers: []answerDoc{noContent("Revoked.")},
		Errors:  []string{"NOT_FOUND", "CONFLICT"},
	},

	// Releases.
	"release_list": {
		Summary: "List releases",
		Query: []paramDoc{
			{Name: "state", Type: "string", Description: "Only releases in this state."},
			{Name: "cursor", Type: "string", Description: "The `nextCursor` of the previous page."},
			{Name: "limit", Type: "integer", Description: "Page size, 1 to 1000."},
		},
		Answers: []answerDoc{jsonAnswer[wire.ReleasePage](http.StatusOK, "A page of releases, ordered by name.")},
		Errors:  []string{"INVALID_INPUT"},
	},
	"release_create": {
		Summary:     "Create a release",
		Description: "A release in planning, with its plan, its artifact versions and the quorum of its gates.",
		Body: jsonBody[wire.CreateReleaseRequest]("The release.").example(`{"name":"2026.11-payments","changeRef":"CHG-1042","title":"Payments API 1.4.2",` +
			`"environments":["staging","production"],"plan":{"description":"refund fixes","backoutPlan":"redeploy 1.4.1","risk":"low"},` +
			`"artifacts":[{"name":"payments/api","version":"1.4.2"}],"gates":{"deploy:production":{"approvals":2}}}`),
		Answers: []answerDoc{jsonAnswer[wire.PlannedRelease](http.StatusCreated, "The release, and a warning for each of its artifacts that is not admitted yet; Location names it.").withHeader("Location", "The release's URL path.")},
		Errors:  append([]string{"RELEASE_EXISTS", "NOT_FOUND", "NAME_INVALID", "VERSION_INVALID", "ARTIFACT_REJECTED", "ARTIFACT_RETIRED", "NOT_ADMITTED"}, planErrors...),
	},
	"release_get": {
		Summary: "Get a release",
		Answers: []answerDoc{jsonAnswer[wire.Release](http.StatusOK, "The release, its gates and the actions it allows now.")},
		Errors:  []string{"NOT_FOUND"},
	},
	"release_manifest_get": {
		Summary: "Download a release's sealed manifest",
		Description: "The OCI image index the build gate sealed, with the server's signature over it in X-Dml-Signature. It exists " +
			"once the release is released.",
		Headers: contentRequestHeaders,
		Answers: []answerDoc{
			raw(http.StatusOK, "application/vnd.oci.image.index.v1+json", "The manifest.").withHeader("X-Dml-Signature", "The server's signature over the manifest."),
			raw(http.StatusPartialContent, "application/vnd.oci.image.index.v1+json", "A range of the manifest."),
			headAnswer(http.StatusNotModified, "If-None-Match matched."),
		},
		Errors: []string{"NOT_FOUND", "BLOB_UNKNOWN", "BLOB_CORRUPT", "RANGE_INVALID", "PRECONDITION_FAILED", "STORAGE_UNAVAILABLE"},
	},
	"release_manifest_head": {
		Summary: "Check a release's sealed manifest",
		Headers: contentRequestHeaders,
		Answers: []answerDoc{headAnswer(http.StatusOK, "The manifest's headers."), headAnswer(http.StatusNotModified, "If-None-Match matched.")},
		Errors:  []string{"NOT_FOUND", "BLOB_UNKNOWN", "STORAGE_UNAVAILABLE"},
	},
	"release_plan": {
		Summary:     "Change a release's plan",
		Description: "Replaces the plan while the release is in planning; approvals of the plan gate given before are discarded.",
		Body:        jsonBody[wire.PlanRequest]("The new plan."),
		Answers:     []answerDoc{jsonAnswer[wire.PlannedRelease](http.StatusOK, "The release, and a warning for each of its artifacts that is not admitted yet.")},
		Errors:      append([]string{"NOT_FOUND", "INVALID_STATE"}, planErrors...),
	},
	"release_artifacts": {
		Summary:     "Change a release's artifact versions",
		Description: "Replaces the list of artifact versions while the release is in planning or building.",
		Body:        &bodyDoc{Content: "application/json", Description: "The artifact versions.", Type: reflect.TypeFor[[]wire.ReleaseArtifactRef](), Example: `[{"name":"payments/api","version":"1.4.2"}]`},
		Answers:     []answerDoc{jsonAnswer[wire.PlannedRelease](http.StatusOK, "The release, and a warning for each of its artifacts that is not admitted yet.")},
		Errors:      []string{"NOT_FOUND", "INVALID_STATE", "INVALID_INPUT", "NAME_INVALID", "VERSION_INVALID", "ARTIFACT_REJECTED", "ARTIFACT_RETIRED", "NOT_ADMITTED", "CONFLICT"},
	},
	"release_approval": {
		Summary: "Decide a gate",
		Description: "An approver approves or rejects a gate, naming the digest the gate expects now (its `expectedDigest`): a decision " +
			"on anything else is refused with STALE_APPROVAL. A rejection needs a comment. Whoever created the release or edited " +
			"what the gate approves cannot decide it (SEPARATION_OF_DUTIES).",
		Body:    jsonBody[wire.ApprovalRequest]("The decision."),
		Answers: []answerDoc{jsonAnswer[wire.DecidedRelease](http.StatusOK, "The release after the decision; alreadyCounted when this approver's approval of this gate was counted before (nothing changed).")},
		Errors: []string{"NOT_FOUND", "INVALID_STATE", "STALE_APPROVAL", "SEPARATION_OF_DUTIES", "BUILD_BLOCKED", "CHANGE_NOT_APPROVED",
			"INVALID_INPUT", "CONFLICT", "DIGEST_INVALID"},
	},
	"release_deployment_record": {
		Summary:     "Record a deployment",
		Description: "A deployment agent records a rollout to an environment whose deploy gate is authorised and which its token names.",
		Body:        jsonBody[wire.DeploymentRequest]("The deployment."),
		Answers:     []answerDoc{jsonAnswer[wire.DeploymentResult](http.StatusCreated, "The deployment and the release.")},
		Errors:      deploymentErrors,
	},
	"release_deployment_update": {
		Summary: "Update a deployment",
		Body:    jsonBody[wire.DeploymentUpdate]("What changes; what is not set is left alone."),
		Answers: []answerDoc{jsonAnswer[wire.DeploymentResult](http.StatusOK, "The deployment and the release.")},
		Errors:  deploymentErrors,
	},
	"release_review": {
		Summary: "File the post-implementation review",
		Body:    jsonBody[wire.ReviewRequest]("The review."),
		Answers: []answerDoc{jsonAnswer[wire.Release](http.StatusOK, "The release, now in review.")},
		Errors:  []string{"NOT_FOUND", "INVALID_STATE", "INVALID_INPUT"},
	},
	"release_cancel": {
		Summary: "Cancel a release",
		Body:    jsonBody[wire.CancelRequest]("The reason, which is required."),
		Answers: []answerDoc{jsonAnswer[wire.Release](http.StatusOK, "The cancelled release.")},
		Errors:  []string{"NOT_FOUND", "INVALID_STATE", "INVALID_INPUT", "REASON_REQUIRED"},
	},
	"release_emergency": {
		Summary:     "Request an emergency change",
		Description: "Lets the release deploy outside its change window once its emergency gate is authorised.",
		Body:        jsonBody[wire.EmergencyRequest]("The reason, and until when."),
		Answers:     []answerDoc{jsonAnswer[wire.Release](http.StatusOK, "The release with its emergency gate.")},
		Errors:      []string{"NOT_FOUND", "INVALID_STATE", "INVALID_INPUT"},
	},

	// Settings.
	"gate_defaults_get": {
		Summary: "Get the default gate quorums",
		Answers: []answerDoc{jsonAnswer[wire.GateDefaults](http.StatusOK, "The default quorum by gate.")},
	},
	"gate_defaults_set": {
		Summary: "Set the default gate quorums",
		Body:    &bodyDoc{Content: "application/json", Description: "Quorums by gate name (plan, build, deploy:ENV, close).", Type: reflect.TypeFor[map[string]wire.GateSetting](), Example: `{"deploy:production":{"approvals":2}}`},
		Answers: []answerDoc{jsonAnswer[wire.GateDefaults](http.StatusOK, "The new defaults.")},
		Errors:  []string{"INVALID_INPUT", "QUORUM_TOO_LOW"},
	},
	"change_policy_get": {
		Summary: "Get the change policy",
		Answers: []answerDoc{jsonAnswer[wire.ChangePolicy](http.StatusOK, "Change windows, risk levels, change references and the change system.")},
	},
	"change_policy_set": {
		Summary: "Change the change policy",
		Body:    jsonBody[wire.ChangePolicyUpdate]("What changes; what is not set is left alone."),
		Answers: []answerDoc{jsonAnswer[wire.ChangePolicy](http.StatusOK, "The new policy.")},
		Errors:  []string{"INVALID_INPUT"},
	},

	// Audit.
	"audit_key": {
		Summary:     "The audit log's verifier key",
		Description: "The note verifier key (golang.org/x/mod/sumdb/note) that checks the log's signed checkpoints; compare it out of band.",
		Answers:     []answerDoc{raw(http.StatusOK, "text/plain", "The verifier key and a newline.")},
	},
	"audit_checkpoint": {
		Summary: "The audit log's signed checkpoint",
		Answers: []answerDoc{raw(http.StatusOK, "text/plain", "A signed note: origin, size, root hash, signature.").withHeader("X-Dml-Log-Size", "The log's size.")},
	},
	"audit_entries": {
		Summary:     "Read audit log records",
		Description: "Records from index `start`, one canonical JSON record per line (the bytes the Merkle tree hashes).",
		Query: []paramDoc{
			{Name: "start", Type: "integer", Description: "The first index (default 0)."},
			{Name: "limit", Type: "integer", Description: "At most this many records, 1 to 1000000 (default 1000)."},
		},
		Answers: []answerDoc{ndjsonAnswer[auditlog.Record](http.StatusOK, "Records, one per line.")},
		Errors:  []string{"INVALID_INPUT"},
	},
	"audit_inclusion_proof": {
		Summary: "Prove a record is in the log",
		Query: []paramDoc{
			{Name: "index", Type: "integer", Description: "The record's index.", Required: true},
			{Name: "size", Type: "integer", Description: "The size of the tree (a checkpoint's).", Required: true},
		},
		Answers: []answerDoc{jsonAnswer[wire.InclusionProof](http.StatusOK, "The proof.")},
		Errors:  []string{"INVALID_INPUT"},
	},
	"audit_consistency_proof": {
		Summary: "Prove a log extends an older one",
		Query: []paramDoc{
			{Name: "from", Type: "integer", Description: "The older size.", Required: true},
			{Name: "to", Type: "integer", Description: "The newer size.", Required: true},
		},
		Answers: []answerDoc{jsonAnswer[wire.ConsistencyProof](http.StatusOK, "The proof.")},
		Errors:  []string{"INVALID_INPUT"},
	},
	"audit_access_log": {
		Summary: "Read the access log",
		Query: []paramDoc{
			{Name: "subject", Type: "string", Description: "Only records about this subject."},
			{Name: "principal", Type: "string", Description: "Only records of this principal."},
			{Name: "since", Type: "string", Description: "Only records at or after this RFC 3339 time."},
			{Name: "cursor", Type: "string", Description: "The `nextCursor` of the previous page."},
			{Name: "limit", Type: "integer", Description: "Page size, 1 to 1000."},
		},
		Answers: []answerDoc{jsonAnswer[wire.AccessPage](http.StatusOK, "A page of access records, oldest first.")},
		Errors:  []string{"INVALID_INPUT"},
	},

	// Maintenance.
	"admin_fsck": {
		Summary:     "Check the blob store",
		Description: "Runs fsck on the server and streams its events: progress, findings, then a summary (or an error event, once the 200 is out).",
		Body:        jsonBody[wire.FsckRequest]("No settings yet.").optional(),
		Answers:     []answerDoc{ndjsonAnswer[wire.FsckEvent](http.StatusOK, "Events, one per line.")},
		Errors:      []string{"INVALID_INPUT", "CONFLICT", "STORAGE_UNAVAILABLE"},
	},
	"admin_gc": {
		Summary:     "Collect unreferenced blobs",
		Description: "Runs gc on the server and streams its events, as fsck does.",
		Body:        jsonBody[wire.GCRequest]("Grace period and dry run.").optional(),
		Answers:     []answerDoc{ndjsonAnswer[wire.GCEvent](http.StatusOK, "Events, one per line.")},
		Errors:      []string{"INVALID_INPUT", "CONFLICT", "STORAGE_UNAVAILABLE"},
	},

	// Tokens.
	"token_whoami": {
		Summary: "Who the token is",
		Answers: []answerDoc{jsonAnswer[wire.Identity](http.StatusOK, "The token's principal, roles and environments.")},
	},
	"token_list": {
		Summary: "List tokens",
		Answers: []answerDoc{jsonAnswer[wire.TokenList](http.StatusOK, "Every token, without secrets.")},
	},
	"token_issue": {
		Summary: "Issue a token",
		Body:    jsonBody[wire.TokenRequest]("The token's name, roles and environments.").example(`{"name":"ci-pipeline","roles":["publisher"]}`),
		Answers: []answerDoc{jsonAnswer[wire.IssuedToken](http.StatusCreated, "The token and its secret, shown only here.")},
		Errors:  []string{"INVALID_INPUT", "CONFLICT"},
	},
	"token_revoke": {
		Summary: "Revoke a token",
		Answers: []answerDoc{noContent("Revoked.")},
		Errors:  []string{"NOT_FOUND", "INVALID_INPUT"},
	},

	// Retention and quotas.
	"retention_policy_list": {
		Summary: "List retention policies",
		Answers: []answerDoc{jsonAnswer[wire.RetentionPolicyList](http.StatusOK, "Every policy.")},
	},
	"retention_policy_get": {
		Summary: "Get a retention policy",
		Answers: []answerDoc{jsonAnswer[wire.RetentionPolicy](http.StatusOK, "The policy.")},
		Errors:  []string{"NOT_FOUND"},
	},
	"retention_policy_set": {
		Summary: "Create or replace a retention policy",
		Body:    jsonBody[wire.RetentionPolicy]("The policy; its id, when sent, must be the path's.").example(`{"pattern":"team/**","keepAdmitted":3}`),
		Answers: []answerDoc{jsonAnswer[wire.RetentionPolicy](http.StatusOK, "The policy as stored.")},
		Errors:  []string{"INVALID_INPUT"},
	},
	"retention_policy_delete": {
		Summary: "Delete a retention policy",
		Answers: []answerDoc{noContent("Deleted.")},
		Errors:  []string{"NOT_FOUND"},
	},
	"retention_run": {
		Summary:     "Apply the retention policies",
		Description: "Deletes what the policies say to forget (never what a release holds), or with dryRun=true only reports it.",
		Query:       []paramDoc{{Name: "dryRun", Type: "boolean", Description: "Report, delete nothing."}},
		Answers:     []answerDoc{jsonAnswer[wire.RetentionRun](http.StatusOK, "What was (or would be) deleted or kept, and why.")},
		Errors:      []string{"INVALID_INPUT", "STORAGE_UNAVAILABLE"},
	},
	"quota_list": {
		Summary: "List quotas",
		Answers: []answerDoc{jsonAnswer[wire.QuotaList](http.StatusOK, "Every quota with its usage.")},
	},
	"quota_get": {
		Summary: "Get a quota",
		Answers: []answerDoc{jsonAnswer[wire.Quota](http.StatusOK, "The quota with its usage.")},
		Errors:  []string{"NOT_FOUND", "INVALID_INPUT"},
	},
	"quota_set": {
		Summary: "Create or replace a quota",
		Body:    jsonBody[wire.Quota]("The limits; the prefix, when sent, must be the path's.").example(`{"maxArtifacts":100,"maxBytes":10737418240}`),
		Answers: []answerDoc{jsonAnswer[wire.Quota](http.StatusOK, "The quota with its usage.")},
		Errors:  []string{"INVALID_INPUT"},
	},
	"quota_delete": {
		Summary: "Delete a quota",
		Answers: []answerDoc{noContent("Deleted.")},
		Errors:  []string{"NOT_FOUND", "INVALID_INPUT"},
	},

	// Events.
	"event_list": {
		Summary:     "Read the event stream",
		Description: "Events after a position, oldest first; with `wait` the request is held until one arrives (long poll). docs/events.md.",
		Query: []paramDoc{
			{Name: "since", Type: "string", Description: "A position (the `next` of the previous page), or `latest`."},
			{Name: "limit", Type: "integer", Description: "At most this many events."},
			{Name: "wait", Type: "string", Description: "How long to wait for an event: a duration (30s) or seconds."},
			{Name: "type", Type: "string", Description: "Only these event types (repeat, or separate with commas).", Repeat: true},
			{Name: "match", Type: "string", Description: "Only events whose subject matches these patterns.", Repeat: true},
			{Name: "environment", Type: "string", Description: "Only events about these environments.", Repeat: true},
		},
		Answers: []answerDoc{jsonAnswer[wire.EventPage](http.StatusOK, "A page of events.")},
		Errors:  []string{"INVALID_INPUT"},
	},
	"webhook_create": {
		Summary: "Create a webhook",
		Body:    jsonBody[wire.WebhookRequest]("Where to deliver, the signing secret and the filter.").example(`{"url":"https://hooks.example.com/dml","secret":"a-long-shared-secret-0123","events":["release.deployed"]}`),
		Answers: []answerDoc{jsonAnswer[wire.Webhook](http.StatusCreated, "The webhook; Location names it.").withHeader("Location", "The webhook's URL path.")},
		Errors:  []string{"INVALID_INPUT"},
	},
	"webhook_list": {
		Summary: "List webhooks",
		Answers: []answerDoc{jsonAnswer[wire.WebhookList](http.StatusOK, "Every webhook.")},
	},
	"webhook_get": {
		Summary: "Get a webhook",
		Answers: []answerDoc{jsonAnswer[wire.Webhook](http.StatusOK, "The webhook.")},
		Errors:  []string{"NOT_FOUND"},
	},
	"webhook_delete": {
		Summary: "Delete a webhook",
		Answers: []answerDoc{noContent("Deleted.")},
		Errors:  []string{"NOT_FOUND"},
	},
	"webhook_deliveries": {
		Summary: "List a webhook's deliveries",
		Query:   []paramDoc{{Name: "limit", Type: "integer", Description: "At most this many, newest first."}},
		Answers: []answerDoc{jsonAnswer[wire.DeliveryList](http.StatusOK, "The deliveries.")},
		Errors:  []string{"NOT_FOUND", "INVALID_INPUT"},
	},
	"webhook_redeliver": {
		Summary: "Deliver an event again",
		Answers: []answerDoc{jsonAnswer[wire.Delivery](http.StatusAccepted, "The new delivery, queued.")},
		Errors:  []string{"NOT_FOUND", "CONFLICT"},
	},

	// Single sign-on.
	"sso_providers": {
		Summary: "List single sign-on providers",
		Answers: []answerDoc{jsonAnswer[wire.SSOProviderList](http.StatusOK, "The providers a person may sign in with.")},
	},
	"sso_sign_in": {
		Summary:     "Sign in with a provider's ID token",
		Description: "Exchanges an ID token the provider signed (from `dml login`'s device or browser flow) for a session token whose roles the provider's group mapping grants.",
		Body:        jsonBody[wire.SSOSessionRequest]("The provider and its tokens."),
		Answers:     []answerDoc{jsonAnswer[wire.SSOSession](http.StatusCreated, "The session token, shown only here.")},
		Errors:      []string{"NOT_FOUND", "SSO_TOKEN_INVALID", "SSO_PROVIDER_FAILED", "NO_ROLE_GRANTED", "INVALID_INPUT"},
	},
	"sso_sign_out": {
		Summary: "End one's own session",
		Answers: []answerDoc{noContent("The session token no longer works.")},
		Errors:  []string{"INVALID_INPUT", "NOT_FOUND"},
	},
}

// errorDetails are the detail objects of the error codes that always
// carry one shape (when they carry a detail at all): the schema of an
// error answer checks a detail of one of these codes against its type. A
// code whose detail depends on the route (NOT_FOUND, MALFORMED, ...) is
// left out, and its detail is any JSON object.
var errorDetails = map[string]reflect.Type{
	"INVALID_STATE":                  reflect.TypeFor[wire.InvalidStateDetail](),
	"OUTSIDE_CHANGE_WINDOW":          reflect.TypeFor[wire.OutsideWindowDetail](),
	"CHANGE_REF_INVALID":             reflect.TypeFor[wire.ChangeRefDetail](),
	"RISK_INVALID":                   reflect.TypeFor[wire.RiskDetail](),
	"CHANGE_NOT_APPROVED":            reflect.TypeFor[wire.ChangeNotApprovedDetail](),
	"BUILD_BLOCKED":                  reflect.TypeFor[wire.BuildBlockedDetail](),
	"ARTIFACT_REJECTED":              reflect.TypeFor[wire.ArtifactRefusedDetail](),
	"QUOTA_EXCEEDED":                 reflect.TypeFor[wire.QuotaExceeded](),
	"SIGNATURE_INVALID":              reflect.TypeFor[wire.VerificationDetail](),
	"KEY_UNTRUSTED":                  reflect.TypeFor[wire.VerificationDetail](),
	"SUBJECT_MISMATCH":               reflect.TypeFor[wire.VerificationDetail](),
	"UNSUPPORTED":                    reflect.TypeFor[wire.VerificationDetail](),
	"CERTIFICATE_UNTRUSTED":          reflect.TypeFor[wire.VerificationDetail](),
	"IDENTITY_MISMATCH":              reflect.TypeFor[wire.VerificationDetail](),
	"CERTIFICATE_EXPIRED_AT_SIGNING": reflect.TypeFor[wire.VerificationDetail](),
	"TLOG_ENTRY_MISSING":             reflect.TypeFor[wire.VerificationDetail](),
	"TLOG_PROOF_INVALID":             reflect.TypeFor[wire.VerificationDetail](),
	"TIMESTAMP_MISSING":              reflect.TypeFor[wire.VerificationDetail](),
}

// Codes shared by several operations.
var (
	evidenceErrors = []string{"NOT_FOUND", "NAME_INVALID", "VERSION_INVALID", "SIGNATURE_INVALID", "KEY_UNTRUSTED", "SUBJECT_MISMATCH",
		"UNSUPPORTED", "CERTIFICATE_UNTRUSTED", "IDENTITY_MISMATCH", "CERTIFICATE_EXPIRED_AT_SIGNING", "TLOG_ENTRY_MISSING",
		"TLOG_PROOF_INVALID", "TIMESTAMP_MISSING", "EVIDENCE_REPLAYED", "ARTIFACT_RETIRED", "INVALID_INPUT", "CONFLICT",
		"QUOTA_EXCEEDED", "STORAGE_UNAVAILABLE"}
	planErrors       = []string{"INVALID_INPUT", "QUORUM_TOO_LOW", "CHANGE_REF_INVALID", "RISK_INVALID", "CHANGE_NOT_APPROVED", "CONFLICT"}
	deploymentErrors = []string{"NOT_FOUND", "INVALID_STATE", "NOT_AUTHORIZED_FOR_ENVIRONMENT", "DEPLOYMENT_OUT_OF_ORDER",
		"OUTSIDE_CHANGE_WINDOW", "INVALID_INPUT", "CONFLICT", "DIGEST_INVALID"}
)

// contentRequestHeaders are the conditional and range headers of routes
// that serve stored bytes.
var contentRequestHeaders = []paramDoc{
	{Name: "Range", Type: "string", Description: "A byte range (RFC 9110), e.g. `bytes=0-1023`."},
	{Name: "If-None-Match", Type: "string", Description: "The ETag (the quoted digest) held: 304 when it matches."},
	{Name: "If-Range", Type: "string", Description: "Serve the range only if the ETag still matches."},
}

// contentAnswers are the answers of a GET of stored bytes.
func contentAnswers(what string) []answerDoc {
	return []answerDoc{
		raw(http.StatusOK, "application/octet-stream", what+" Content-Type is the media type it was stored with.").
			withHeader("ETag", "The quoted digest.").withHeader("Docker-Content-Digest", "The digest."),
		raw(http.StatusPartialContent, "application/octet-stream", "The range asked for (Content-Range says which)."),
		headAnswer(http.StatusNotModified, "If-None-Match matched."),
	}
}
