// Package errdef holds the domain's shared sentinel errors, in the manner
// of oras-go's errdef: a handful of categories that every concept wraps
// with context (the name, the digest, the state) and that callers check
// with errors.Is. A concept's own refinements (names.ErrNameInvalid,
// catalog.ErrVersionExists, registry.ErrManifestUnknown, …) live with the
// concept and wrap one of these where they belong to its category, so
// code that only knows the categories still classifies them.
//
// Every store adapter translates its driver's errors into these before
// they travel (a missing row is ErrNotFound, a taken key ErrConflict).
package errdef
