package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of arrays and objects. The documents dml reads
// (requests, manifests, DSSE envelopes, Sigstore bundles, in-toto
// statements, trust policies) nest a handful of levels; 64 leaves room for
// rich predicates and refuses the "[[[[..." that only costs work.
const MaxDepth = 64

// The problems Check reports, each wrapped in an *Error.
var (
	ErrDuplicateKey = errors.New("duplicate object key")
	ErrTrailingData = errors.New("data after the JSON value")
	ErrTooDeep      = errors.New("JSON nested too deeply")
	ErrSyntax       = errors.New("invalid JSON")
)

// Error says what is wrong and where: Pointer is the RFC 6901 JSON pointer
// of the offending value ("" for the whole document), Offset the byte
// offset where the problem was found.
type Error struct {
	// Err is one of ErrDuplicateKey, ErrTrailingData, ErrTooDeep, ErrSyntax.
	Err     error
	Pointer string
	Offset  int64
	// Cause is the decoder's own error, for syntax errors.
	Cause error
}

func (e *Error) Error() string {
	msg := e.Err.Error()
	if e.Pointer != "" {
		msg += " at " + e.Pointer
	}
	msg += fmt.Sprintf(" (byte %d)", e.Offset)
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Problem names the problem in a word or two, for error details:
// "duplicate_key", "trailing_data", "too_deep" or "syntax".
func (e *Error) Problem() string {
	switch e.Err {
	case ErrDuplicateKey:
		return "duplicate_key"
	case ErrTrailingData:
		return "trailing_data"
	case ErrTooDeep:
		return "too_deep"
	}
	return "syntax"
}

// frame is one open object or array.
type frame struct {
	object bool
	keys   map[string]bool // folded keys seen (objects)
	key    string          // the current key (objects)
	index  int             // the current index (arrays)
	// wantKey is set in an object when the next string is a key.
	wantKey bool
}

// Check reports whether data is one JSON value with nothing but whitespace
// after it, no object key repeated (after unescaping and case folding, as
// encoding/json matches struct fields) and nesting at most MaxDepth. It
// returns nil or an *Error.
func Check(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are not converted, so none can fail here
	var stack []*frame
	fail := func(err error, cause error) error {
		return &Error{Err: err, Pointer: pointer(stack), Offset: dec.InputOffset(), Cause: cause}
	}
	// done records that a value finished in the innermost open container.
	done := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.wantKey = true
		} else {
			f.index++
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return fail(ErrSyntax, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return fail(ErrSyntax, err)
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= MaxDepth {
					return fail(ErrTooDeep, fmt.Errorf("more than %d levels", MaxDepth))
				}
				stack = append(stack, &frame{object: t == '{', wantKey: t == '{', keys: map[string]bool{}})
			default: // '}' or ']'
				stack = stack[:len(stack)-1]
				done()
			}
		case string:
			if f := top(stack); f != nil && f.object && f.wantKey {
				folded := foldKey(t)
				f.key, f.wantKey = t, false
				if f.keys[folded] {
					return fail(ErrDuplicateKey, nil)
				}
				f.keys[folded] = true
				continue
			}
			done()
		default:
			done()
		}
		if len(stack) == 0 {
			break
		}
	}
	end := dec.InputOffset()
	if rest := bytes.TrimLeft(data[end:], " \t\r\n"); len(rest) > 0 {
		return &Error{Err: ErrTrailingData, Offset: int64(len(data) - len(rest))}
	}
	return nil
}

// Unmarshal is json.Unmarshal after Check.
func Unmarshal(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func top(stack []*frame) *frame {
	if len(stack) == 0 {
		return nil
	}
	return stack[len(stack)-1]
}

// pointer is the JSON pointer of the value being read.
func pointer(stack []*frame) string {
	var b strings.Builder
	for _, f := range stack {
		b.WriteByte('/')
		if f.object {
			b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(f.key))
		} else {
			b.WriteString(strconv.Itoa(f.index))
		}
	}
	return b.String()
}

// foldKey maps every key encoding/json would match to the same struct
// field to the same string: ASCII letters upper-cased, other runes to the
// smallest rune of their Unicode case-folding orbit (so "ſ", U+017F, folds
// with "s" and "S"), as encoding/json's own foldName does.
func foldKey(key string) string {
	var b strings.Builder
	b.Grow(len(key))
	for _, r := range key {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			continue
		}
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		b.WriteRune(r)
	}
	return b.String()
}
