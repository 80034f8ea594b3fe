package releases

import (
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/releases/trust"
)

// Transitional names while the domain is split into its concept packages;
// this file goes when the last caller has moved.
var (
	ErrVersionExists     = catalog.ErrVersionExists
	ErrNotAdmitted       = catalog.ErrNotAdmitted
	ErrArtifactRetired   = catalog.ErrArtifactRetired
	ErrWrongEvidenceKind = catalog.ErrWrongEvidenceKind
	ErrEvidenceReplayed  = catalog.ErrEvidenceReplayed
	ErrPolicyInvalid     = trust.ErrPolicyInvalid
	ErrBlobCorrupt       = blobs.ErrBlobCorrupt
	ErrBlobCollecting    = blobs.ErrBlobCollecting
	ErrNotFound          = errdef.ErrNotFound
	ErrConflict          = errdef.ErrConflict
	ErrInvalidInput      = errdef.ErrInvalidInput
	ErrUnauthorized      = errdef.ErrUnauthorized
	ErrDenied            = errdef.ErrDenied
	ErrNameInvalid       = names.ErrNameInvalid
	ErrVersionInvalid    = names.ErrVersionInvalid
	ErrMediaTypeInvalid  = names.ErrMediaTypeInvalid

	ValidateName        = names.ValidateName
	ValidateVersion     = names.ValidateVersion
	ValidateMediaType   = names.ValidateMediaType
	ParseContentType    = names.ParseContentType
	ValidateEnvironment = names.ValidateEnvironment
)

type (
	Artifact                = catalog.Artifact
	ArtifactState           = catalog.ArtifactState
	ArtifactFilter          = catalog.ArtifactFilter
	Evidence                = catalog.Evidence
	EvidenceKind            = catalog.EvidenceKind
	EvidenceRequest         = catalog.EvidenceRequest
	ClaimPresentation       = catalog.ClaimPresentation
	Admission               = catalog.Admission
	PushRequest             = catalog.PushRequest
	Content                 = catalog.Content
	TrustKey                = trust.TrustKey
	PolicyVersion           = trust.PolicyVersion
	AddTrustKeyRequest      = trust.AddTrustKeyRequest
	BlobReader              = blobs.BlobReader
	BlobIntegrity           = blobs.BlobIntegrity
	BlobRef                 = blobs.BlobRef
	BlobHolder              = blobs.BlobHolder
	Finding                 = blobs.Finding
	Progress                = blobs.Progress
	MaintenanceError        = blobs.MaintenanceError
	FsckSummary             = blobs.FsckSummary
	GCSummary               = blobs.GCSummary
	GCOptions               = blobs.GCOptions
	MaintenanceEvent[S any] = blobs.MaintenanceEvent[S]
	Event                   = audit.Event
	AuditEntry              = audit.AuditEntry
	AccessRecord            = audit.AccessRecord
	AccessFilter            = audit.AccessFilter
	AccessOutcome           = audit.AccessOutcome
	Role                    = access.Role
	Principal               = access.Principal
	Actor                   = access.Actor
	Token                   = access.Token
	TokenRequest            = access.TokenRequest
	IssuedToken             = access.IssuedToken
)

const (
	StateQuarantined       = catalog.StateQuarantined
	StateAdmitted          = catalog.StateAdmitted
	StateRejected          = catalog.StateRejected
	EvidenceSignature      = catalog.EvidenceSignature
	EvidenceAttestation    = catalog.EvidenceAttestation
	DefaultMediaType       = catalog.DefaultMediaType
	MaxEvidenceSize        = catalog.MaxEvidenceSize
	MediaTypeSignature     = catalog.MediaTypeSignature
	MediaTypeBundle        = catalog.MediaTypeBundle
	MediaTypeDSSE          = catalog.MediaTypeDSSE
	ActionArtifactPushed   = catalog.ActionArtifactPushed
	ActionArtifactRetired  = catalog.ActionArtifactRetired
	ActionEvidenceAdded    = catalog.ActionEvidenceAdded
	ActionAdmissionDecided = catalog.ActionAdmissionDecided
	ActionTrustKeyAdded    = trust.ActionTrustKeyAdded
	ActionTrustKeyRevoked  = trust.ActionTrustKeyRevoked
	ActionTrustPolicySet   = trust.ActionTrustPolicySet
	DefaultGCGrace         = blobs.DefaultGCGrace
	ActionBlobCorrupt      = blobs.ActionBlobCorrupt
	ActionBlobRepaired     = blobs.ActionBlobRepaired
	ActionBlobCollected    = blobs.ActionBlobCollected
	FindingCorrupt         = blobs.FindingCorrupt
	FindingMissing         = blobs.FindingMissing
	FindingSize            = blobs.FindingSize
	FindingUnexpected      = blobs.FindingUnexpected
	FindingCatalogue       = blobs.FindingCatalogue
	FindingUnreadable      = blobs.FindingUnreadable
	FindingOrphan          = blobs.FindingOrphan
	FindingRepaired        = blobs.FindingRepaired
	FindingUpload          = blobs.FindingUpload
	AccessServed           = audit.AccessServed
	AccessAborted          = audit.AccessAborted
	AccessFailed           = audit.AccessFailed
	AccessUnauthorized     = audit.AccessUnauthorized
	AccessDenied           = audit.AccessDenied
	AccessConflict         = audit.AccessConflict
	RoleAdmin              = access.RoleAdmin
	RolePublisher          = access.RolePublisher
	RoleReleaseManager     = access.RoleReleaseManager
	RoleApprover           = access.RoleApprover
	RoleDeployer           = access.RoleDeployer
	RoleAuditor            = access.RoleAuditor
	ActionTokenIssued      = access.ActionTokenIssued
	ActionTokenRevoked     = access.ActionTokenRevoked
	MaxTokenLifetime       = access.MaxTokenLifetime
)

var (
	Roles                  = access.Roles
	ErrNotAuthorizedForEnv = access.ErrNotAuthorizedForEnv
	serverActor            = access.ServerActor
	NewSecret              = access.NewSecret
	HashSecret             = access.HashSecret
)

// MaxPageSize bounds list pages.
const MaxPageSize = names.MaxPageSize
