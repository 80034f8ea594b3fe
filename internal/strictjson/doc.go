// Package strictjson refuses JSON that different parsers may read
// differently: a document must be exactly one value (whitespace around it
// allowed, nothing else), no object may name a key twice at any depth, and
// nesting is bounded.
//
// encoding/json accepts all three: json.Decoder stops after the first
// value and ignores what follows, and both Decoder and Unmarshal let the
// last of two equal keys win (matching struct fields case-insensitively,
// so "name" and "NAME" are the same key to them). Another parser may take
// the first key instead, which is how a signed or approved document comes
// to mean two things. encoding/json/v2 refuses duplicate names, but Go 1.26
// builds it only under GOEXPERIMENT=jsonv2, so the check is done here, once,
// over the token stream of encoding/json itself: the keys are compared after
// the same unescaping and the same case folding the decoder applies.
package strictjson
