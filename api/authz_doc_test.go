package api_test

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/api"
	"github.com/dmlproject/dml/releases/access"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the generated part of docs/security.md from the access matrix")

const (
	securityDoc  = "../docs/security.md"
	matrixBegin  = "<!-- BEGIN ACCESS MATRIX: generated from api/authz.go by `go generate ./api`; do not edit -->"
	matrixEnd    = "<!-- END ACCESS MATRIX -->"
	superscripts = "¹²³⁴⁵⁶⁷⁸⁹"
)

// renderAccessMatrix writes the matrix as Markdown: one row per route, one
// column per role and one for no token, notes for grants the domain
// narrows, and the routes whose downloads the access log records.
func renderAccessMatrix() string {
	var b strings.Builder
	cols := append([]string{"no token"}, func() []string {
		out := make([]string, len(access.Roles))
		for i, r := range access.Roles {
			out[i] = string(r)
		}
		return out
	}()...)
	b.WriteString("| route | " + strings.Join(cols, " | ") + " |\n|---|" + strings.Repeat(":-:|", len(cols)) + "\n")
	var notes []string
	mark := func(note string) string {
		i := slices.Index(notes, note)
		if i < 0 {
			notes = append(notes, note)
			i = len(notes) - 1
		}
		if i < len([]rune(superscripts)) {
			return string([]rune(superscripts)[i])
		}
		return fmt.Sprintf("(%d)", i+1)
	}
	denied := 0
	var downloads []string
	for _, r := range api.AccessMatrix {
		cells := make([]string, len(cols))
		for i, col := range cols {
			g := slices.IndexFunc(r.Grants, func(g api.AccessRuleGrant) bool { return string(g.Role) == col })
			switch {
			case r.Public:
				cells[i] = "✓"
			case g >= 0 && r.Grants[g].Note != "":
				cells[i] = "✓" + mark(r.Grants[g].Note)
			case g >= 0:
				cells[i] = "✓"
			default:
				cells[i] = "–"
				denied++
			}
		}
		fmt.Fprintf(&b, "| `%s %s` | %s |\n", r.Method, r.Path, strings.Join(cells, " | "))
		if r.Download {
			downloads = append(downloads, "`"+r.Method+" "+r.Path+"`")
		}
	}
	b.WriteString("\n")
	for _, n := range notes {
		fmt.Fprintf(&b, "%s %s.  \n", mark(n), strings.ToUpper(n[:1])+n[1:])
	}
	fmt.Fprintf(&b, "\n%d routes × %d columns (%d roles and no token) = %d pairs, of which %d are refused (401 without a token, 403 otherwise).\n",
		len(api.AccessMatrix), len(cols), len(access.Roles), len(api.AccessMatrix)*len(cols), denied)
	fmt.Fprintf(&b, "\nDownloads recorded in the access log (every GET): %s.\n", strings.Join(downloads, ", "))
	return b.String()
}

// TestAccessMatrixDoc fails when docs/security.md does not show the matrix
// the router enforces. `go generate ./api` (or go test ./api -run
// TestAccessMatrixDoc -update-docs) rewrites it.
func TestAccessMatrixDoc(t *testing.T) {
	doc, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i, j := strings.Index(text, matrixBegin), strings.Index(text, matrixEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q … %q", securityDoc, matrixBegin, matrixEnd)
	}
	want := text[:i] + matrixBegin + "\n\n" + renderAccessMatrix() + "\n" + text[j:]
	if want == text {
		return
	}
	if *updateDocs {
		if err := os.WriteFile(securityDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is out of date with the access matrix (api/authz.go); run `go generate ./api`", securityDoc)
}
