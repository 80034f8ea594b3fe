package events

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/signing"
)

// Filter selects events. Empty lists select everything; lists that are
// set must each select the event.
type Filter struct {
	// Types are event types ("gate.approved"), prefix patterns ending in
	// ".*" ("gate.*" selects gate.opened, gate.passed…) or "*".
	Types []string
	// Match are name patterns as the trust policy's ("payments/*",
	// "payments/**"), matched against the artifact, repository or release
	// name the event concerns; events that concern none are not selected.
	Match []string
	// Environments selects the events that concern one of them: a
	// deployment's environment, a deploy gate's.
	Environments []string
}

// Bounds of a filter, so that one webhook cannot make every event cost.
const (
	maxFilterEntries = 64
	maxFilterEntry   = 256
)

var typeRE = regexp.MustCompile(`^(\*|[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*(\.\*)?)$`)

// Validate checks every entry of f, naming the first one wrong.
func (f Filter) Validate() error {
	for _, l := range []struct {
		field string
		list  []string
		check func(string) error
	}{
		{"events", f.Types, func(t string) error {
			if !typeRE.MatchString(t) {
				return fmt.Errorf("%q is neither an event type (gate.approved), a prefix pattern (gate.*) nor *", t)
			}
			return nil
		}},
		{"match", f.Match, signing.ValidateNamePattern},
		{"environments", f.Environments, func(e string) error {
			if strings.TrimSpace(e) != e || strings.ContainsFunc(e, unicode.IsControl) || strings.ContainsAny(e, " *?[") {
				return fmt.Errorf("environment %q must be a plain name", e)
			}
			return nil
		}},
	} {
		if len(l.list) > maxFilterEntries {
			return fmt.Errorf("%w: %s: at most %d entries", errdef.ErrInvalidInput, l.field, maxFilterEntries)
		}
		for _, v := range l.list {
			if v == "" || len(v) > maxFilterEntry {
				return fmt.Errorf("%w: %s: entries must be 1 to %d characters", errdef.ErrInvalidInput, l.field, maxFilterEntry)
			}
			if err := l.check(v); err != nil {
				return fmt.Errorf("%w: %s: %v", errdef.ErrInvalidInput, l.field, err)
			}
		}
	}
	return nil
}

// Matches reports whether f selects e.
func (f Filter) Matches(e Event) bool {
	if len(f.Types) > 0 && !slices.ContainsFunc(f.Types, func(t string) bool { return typeMatches(t, e.Type) }) {
		return false
	}
	if len(f.Match) > 0 && !slices.ContainsFunc(f.Match, func(p string) bool {
		return slices.ContainsFunc(e.Names, func(n string) bool { return signing.MatchNamePattern(p, n) })
	}) {
		return false
	}
	if len(f.Environments) > 0 && !slices.ContainsFunc(e.Environments, func(env string) bool { return slices.Contains(f.Environments, env) }) {
		return false
	}
	return true
}

// typeMatches matches an event type against a type or prefix pattern.
func typeMatches(pattern, typ string) bool {
	if pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(typ, prefix)
	}
	return pattern == typ
}
