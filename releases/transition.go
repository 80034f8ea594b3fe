package releases

import (
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/blobs"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/names"
	"github.com/dmlproject/dml/releases/trust"
)

// Transitional names while the domain is split into its concept packages;
// this file goes when the last caller has moved.
var (
	ReleaseStates           = lifecycle.ReleaseStates
	ErrInvalidState         = lifecycle.ErrInvalidState
	ErrStaleApproval        = lifecycle.ErrStaleApproval
	ErrSeparationOfDuties   = lifecycle.ErrSeparationOfDuties
	ErrBuildBlocked         = lifecycle.ErrBuildBlocked
	ErrDeploymentOutOfOrder = lifecycle.ErrDeploymentOutOfOrder
	ErrQuorumTooLow         = lifecycle.ErrQuorumTooLow
	AllowedActions          = lifecycle.AllowedActions
	DeployGate              = lifecycle.DeployGate
	PlanDigest              = lifecycle.PlanDigest
	ReviewDigest            = lifecycle.ReviewDigest
	ErrVersionExists        = catalog.ErrVersionExists
	ErrNotAdmitted          = catalog.ErrNotAdmitted
	ErrArtifactRetired      = catalog.ErrArtifactRetired
	ErrWrongEvidenceKind    = catalog.ErrWrongEvidenceKind
	ErrEvidenceReplayed     = catalog.ErrEvidenceReplayed
	ErrPolicyInvalid        = trust.ErrPolicyInvalid
	ErrBlobCorrupt          = blobs.ErrBlobCorrupt
	ErrBlobCollecting       = blobs.ErrBlobCollecting
	ErrNotFound             = errdef.ErrNotFound
	ErrConflict             = errdef.ErrConflict
	ErrInvalidInput         = errdef.ErrInvalidInput
	ErrUnauthorized         = errdef.ErrUnauthorized
	ErrDenied               = errdef.ErrDenied
	ErrNameInvalid          = names.ErrNameInvalid
	ErrVersionInvalid       = names.ErrVersionInvalid
	ErrMediaTypeInvalid     = names.ErrMediaTypeInvalid

	ValidateName        = names.ValidateName
	ValidateVersion     = names.ValidateVersion
	ValidateMediaType   = names.ValidateMediaType
	ParseContentType    = names.ParseContentType
	ValidateEnvironment = names.ValidateEnvironment
)

type (
	Release                 = lifecycle.Release
	ReleaseState            = lifecycle.ReleaseState
	ReleaseFilter           = lifecycle.ReleaseFilter
	ReleaseChange           = lifecycle.ReleaseChange
	ReleaseTx               = lifecycle.ReleaseTx
	ReleaseArtifact         = lifecycle.ReleaseArtifact
	ReleaseArtifactRef      = lifecycle.ReleaseArtifactRef
	Plan                    = lifecycle.Plan
	PlanRequest             = lifecycle.PlanRequest
	PlanDetails             = lifecycle.PlanDetails
	Window                  = lifecycle.Window
	Approval                = lifecycle.Approval
	ApprovalRequest         = lifecycle.ApprovalRequest
	Decision                = lifecycle.Decision
	Deployment              = lifecycle.Deployment
	DeploymentStatus        = lifecycle.DeploymentStatus
	DeploymentRequest       = lifecycle.DeploymentRequest
	DeploymentUpdate        = lifecycle.DeploymentUpdate
	Review                  = lifecycle.Review
	ReviewRequest           = lifecycle.ReviewRequest
	Edit                    = lifecycle.Edit
	Setting                 = lifecycle.Setting
	GateSetting             = lifecycle.GateSetting
	GateView                = lifecycle.GateView
	CreateReleaseRequest    = lifecycle.CreateReleaseRequest
	InvalidStateError       = lifecycle.InvalidStateError
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
	ReleasePlanning             = lifecycle.ReleasePlanning
	ReleaseBuilding             = lifecycle.ReleaseBuilding
	ReleaseReleased             = lifecycle.ReleaseReleased
	ReleaseDeploying            = lifecycle.ReleaseDeploying
	ReleaseDeployed             = lifecycle.ReleaseDeployed
	ReleaseReview               = lifecycle.ReleaseReview
	ReleaseClosed               = lifecycle.ReleaseClosed
	ReleaseCancelled            = lifecycle.ReleaseCancelled
	ActionReleaseCreated        = lifecycle.ActionReleaseCreated
	ActionReleasePlanSet        = lifecycle.ActionReleasePlanSet
	ActionReleaseArtifactsSet   = lifecycle.ActionReleaseArtifactsSet
	ActionReleaseApproval       = lifecycle.ActionReleaseApproval
	ActionReleaseSealed         = lifecycle.ActionReleaseSealed
	ActionReleaseDeployment     = lifecycle.ActionReleaseDeployment
	ActionReleaseReview         = lifecycle.ActionReleaseReview
	ActionReleaseClosed         = lifecycle.ActionReleaseClosed
	ActionReleaseCancelled      = lifecycle.ActionReleaseCancelled
	ActionSettingSet            = lifecycle.ActionSettingSet
	PartPlan                    = lifecycle.PartPlan
	PartArtifacts               = lifecycle.PartArtifacts
	PartReview                  = lifecycle.PartReview
	DecisionApprove             = lifecycle.DecisionApprove
	DecisionReject              = lifecycle.DecisionReject
	DeploymentInProgress        = lifecycle.DeploymentInProgress
	DeploymentSucceeded         = lifecycle.DeploymentSucceeded
	DeploymentFailed            = lifecycle.DeploymentFailed
	DeploymentRolledBack        = lifecycle.DeploymentRolledBack
	GatePlan                    = lifecycle.GatePlan
	GateBuild                   = lifecycle.GateBuild
	GateClose                   = lifecycle.GateClose
	AnnotationArtifactName      = lifecycle.AnnotationArtifactName
	AnnotationArtifactVersion   = lifecycle.AnnotationArtifactVersion
	AnnotationReleaseName       = lifecycle.AnnotationReleaseName
	AnnotationChangeRef         = lifecycle.AnnotationChangeRef
	AnnotationPlanDigest        = lifecycle.AnnotationPlanDigest
	AnnotationTitle             = lifecycle.AnnotationTitle
	ReleaseManifestArtifactType = lifecycle.ReleaseManifestArtifactType
	StateQuarantined            = catalog.StateQuarantined
	StateAdmitted               = catalog.StateAdmitted
	StateRejected               = catalog.StateRejected
	EvidenceSignature           = catalog.EvidenceSignature
	EvidenceAttestation         = catalog.EvidenceAttestation
	DefaultMediaType            = catalog.DefaultMediaType
	MaxEvidenceSize             = catalog.MaxEvidenceSize
	MediaTypeSignature          = catalog.MediaTypeSignature
	MediaTypeBundle             = catalog.MediaTypeBundle
	MediaTypeDSSE               = catalog.MediaTypeDSSE
	ActionArtifactPushed        = catalog.ActionArtifactPushed
	ActionArtifactRetired       = catalog.ActionArtifactRetired
	ActionEvidenceAdded         = catalog.ActionEvidenceAdded
	ActionAdmissionDecided      = catalog.ActionAdmissionDecided
	ActionTrustKeyAdded         = trust.ActionTrustKeyAdded
	ActionTrustKeyRevoked       = trust.ActionTrustKeyRevoked
	ActionTrustPolicySet        = trust.ActionTrustPolicySet
	DefaultGCGrace              = blobs.DefaultGCGrace
	ActionBlobCorrupt           = blobs.ActionBlobCorrupt
	ActionBlobRepaired          = blobs.ActionBlobRepaired
	ActionBlobCollected         = blobs.ActionBlobCollected
	FindingCorrupt              = blobs.FindingCorrupt
	FindingMissing              = blobs.FindingMissing
	FindingSize                 = blobs.FindingSize
	FindingUnexpected           = blobs.FindingUnexpected
	FindingCatalogue            = blobs.FindingCatalogue
	FindingUnreadable           = blobs.FindingUnreadable
	FindingOrphan               = blobs.FindingOrphan
	FindingRepaired             = blobs.FindingRepaired
	FindingUpload               = blobs.FindingUpload
	AccessServed                = audit.AccessServed
	AccessAborted               = audit.AccessAborted
	AccessFailed                = audit.AccessFailed
	AccessUnauthorized          = audit.AccessUnauthorized
	AccessDenied                = audit.AccessDenied
	AccessConflict              = audit.AccessConflict
	RoleAdmin                   = access.RoleAdmin
	RolePublisher               = access.RolePublisher
	RoleReleaseManager          = access.RoleReleaseManager
	RoleApprover                = access.RoleApprover
	RoleDeployer                = access.RoleDeployer
	RoleAuditor                 = access.RoleAuditor
	ActionTokenIssued           = access.ActionTokenIssued
	ActionTokenRevoked          = access.ActionTokenRevoked
	MaxTokenLifetime            = access.MaxTokenLifetime
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
