package releases

import (
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/names"
)

// Transitional names while the domain is split into its concept packages;
// this file goes when the last caller has moved.
var (
	ErrNotFound         = errdef.ErrNotFound
	ErrConflict         = errdef.ErrConflict
	ErrInvalidInput     = errdef.ErrInvalidInput
	ErrUnauthorized     = errdef.ErrUnauthorized
	ErrDenied           = errdef.ErrDenied
	ErrNameInvalid      = names.ErrNameInvalid
	ErrVersionInvalid   = names.ErrVersionInvalid
	ErrMediaTypeInvalid = names.ErrMediaTypeInvalid

	ValidateName        = names.ValidateName
	ValidateVersion     = names.ValidateVersion
	ValidateMediaType   = names.ValidateMediaType
	ParseContentType    = names.ParseContentType
	ValidateEnvironment = names.ValidateEnvironment
)

// MaxPageSize bounds list pages.
const MaxPageSize = names.MaxPageSize
