package events

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dmlproject/dml/releases/errdef"
)

// Position is a place in the event stream: after the public event N of
// audit event Seq. N = AllOfSeq stands after every event Seq gave.
type Position struct {
	Seq int64
	N   int
}

// AllOfSeq is the N of a position after all the events of its Seq.
const AllOfSeq = math.MaxInt32

// Start is the position before every event.
var Start = Position{N: AllOfSeq}

// String is the position as an event id ("12.1") or, after all of a
// Seq, the Seq alone ("12").
func (p Position) String() string {
	if p.N == AllOfSeq {
		return strconv.FormatInt(p.Seq, 10)
	}
	return fmt.Sprintf("%d.%d", p.Seq, p.N)
}

// After reports whether p comes after q.
func (p Position) After(q Position) bool {
	return p.Seq > q.Seq || p.Seq == q.Seq && p.N > q.N
}

// ParsePosition reads an event id ("12.1") or a Seq ("12": after every
// event of audit event 12); "" is the start.
func ParsePosition(s string) (Position, error) {
	if s == "" {
		return Start, nil
	}
	seq, n, dotted := strings.Cut(s, ".")
	p := Position{N: AllOfSeq}
	var err error
	if p.Seq, err = strconv.ParseInt(seq, 10, 64); err != nil || p.Seq < 0 {
		return Position{}, fmt.Errorf("%w: %q is not an event id (SEQ or SEQ.N)", errdef.ErrInvalidInput, s)
	}
	if dotted {
		v, err := strconv.ParseInt(n, 10, 32)
		if err != nil || v < 0 || v >= AllOfSeq {
			return Position{}, fmt.Errorf("%w: %q is not an event id (SEQ or SEQ.N)", errdef.ErrInvalidInput, s)
		}
		p.N = int(v)
	}
	return p, nil
}
