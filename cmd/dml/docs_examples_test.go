package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/signing"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// The documentation's examples, checked against the real program: every
// `dml …` command line shown in README.md and docs/*.md names a command
// that exists, with flags that exist and get a value when they take one;
// every trust policy shown parses with the server's parser; and README,
// docs/signing.md and docs/quickstart.md tell one policy story.
// TestQuickstart runs docs/quickstart.md itself.

// docPages are the pages whose examples are checked.
func docPages(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, filepath.Join("..", "..", "README.md"))
	pages := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(filepath.Join("..", ".."), p)
		pages[filepath.ToSlash(name)] = string(b)
	}
	return pages
}

// intentionallyWrong are command lines the pages show on purpose as what
// does not work: a mistyped command, flags renamed since.
var intentionallyWrong = map[string]string{
	"dml release aprove":           "README: a mistyped command and its suggestion",
	"dml audit verify --state":     "README: a renamed flag, for old scripts",
	"dml provenance verify --file": "README: a renamed flag, for old scripts",
}

func TestDocsCommandLines(t *testing.T) {
	root := newRootCmd()
	checked := 0
	for page, text := range docPages(t) {
		for _, ex := range dmlExamples(text) {
			if _, ok := intentionallyWrong[ex.text]; ok {
				continue
			}
			for _, args := range dmlInvocations(ex.text) {
				checked++
				if err := checkCommandLine(root, args, ex.inline); err != nil {
					t.Errorf("%s:%d: %q: %v", page, ex.line, ex.text, err)
				}
			}
		}
	}
	// The extraction must find the examples, or this test proves nothing.
	if checked < 200 {
		t.Fatalf("only %d dml command lines found in README.md and docs/", checked)
	}
	t.Logf("%d dml command lines checked against the command tree", checked)
}

// TestDocsCommandLineCheckerRefuses proves the checker refuses what it
// must: a command that does not exist, a flag that does not exist, a
// value-taking flag given no value, the wrong number of arguments.
func TestDocsCommandLineCheckerRefuses(t *testing.T) {
	root := newRootCmd()
	for _, line := range []string{
		"dml release aprove x --gate plan",
		"dml trust log-keys",
		"dml push payments/api 1.0.0 f --sign-keys k",
		"dml release create r --change-ref",
		"dml release create r --title --env staging",
		"dml audit verify --state s.json",
		"dml pull a 1 -x",
		"dml status payments/api",
		"dml trust log-key log.key",
	} {
		invs := dmlInvocations(line)
		if len(invs) != 1 {
			t.Fatalf("%q: %d invocations", line, len(invs))
		}
		if err := checkCommandLine(root, invs[0], false); err == nil {
			t.Errorf("%q passes the check", line)
		}
	}
	for _, line := range []string{
		`dml -o json token list`,
		`DML_TOKEN=$CI COSIGN_PASSWORD= dml push payments/api 1.4.2 f.tar.gz --sign-key cosign.key --attest t.json --type https://x/y`,
		`test "$(dml status payments/api 1.4.2 --output json | jq -r .artifact.state)" = admitted`,
		`dml pull payments/api 1.4.2 --output-file - --force`,
		`dml serve --s3-endpoint s3:9000 --s3-bucket dml [--s3-prefix dml/]`,
	} {
		invs := dmlInvocations(line)
		if len(invs) != 1 {
			t.Fatalf("%q: %d invocations", line, len(invs))
		}
		if err := checkCommandLine(root, invs[0], false); err != nil {
			t.Errorf("%q: %v", line, err)
		}
	}
}

// checkCommandLine resolves args (without the leading "dml") in the
// command tree and checks every flag, and the number of arguments. A mention (an inline code span) may
// end with a flag that takes a value, naming the flag rather than using it.
func checkCommandLine(root *cobra.Command, args []string, mention bool) error {
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	flags := func(name string, short bool) *pflagInfo {
		for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
			if short {
				if f := fs.ShorthandLookup(name); f != nil {
					return &pflagInfo{name: f.Name, takesValue: f.NoOptDefVal == ""}
				}
			} else if f := fs.Lookup(name); f != nil {
				return &pflagInfo{name: f.Name, takesValue: f.NoOptDefVal == ""}
			}
		}
		if name == "help" || name == "h" {
			return &pflagInfo{name: "help"}
		}
		return nil
	}
	var positional []string
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		if w == "--" {
			positional = append(positional, rest[i+1:]...)
			break
		}
		if !strings.HasPrefix(w, "-") || w == "-" {
			positional = append(positional, w)
			continue
		}
		short := !strings.HasPrefix(w, "--")
		name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
		f := flags(name, short)
		if f == nil {
			return fmt.Errorf("%s has no flag %s", cmd.CommandPath(), w)
		}
		if f.takesValue && !hasValue {
			if i+1 >= len(rest) && mention {
				break
			}
			if i+1 >= len(rest) || strings.HasPrefix(rest[i+1], "--") {
				return fmt.Errorf("%s: flag --%s needs a value", cmd.CommandPath(), f.name)
			}
			i++
		}
	}
	if cmd.HasSubCommands() && len(positional) > 0 {
		return fmt.Errorf("%s has no subcommand %q", cmd.CommandPath(), positional[0])
	}
	if !mention {
		if err := cmd.ValidateArgs(positional); err != nil {
			return fmt.Errorf("%s: %w", cmd.CommandPath(), err)
		}
	}
	return nil
}

type pflagInfo struct {
	name       string
	takesValue bool
}

type docExample struct {
	line   int // 1-based line of the page where the example starts
	text   string
	inline bool // a code span in prose: it may end by naming a flag (`dml push --sign-key`)
}

var (
	inlineDMLRE  = regexp.MustCompile("`(dml [^`]+)`")
	placeholder  = regexp.MustCompile(`<[A-Za-z][^<>]*>`)
	fenceRE      = regexp.MustCompile("^\\s*```\\s*([A-Za-z]*)")
	envAssignRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	indentedCode = regexp.MustCompile(`^ {4,}\S`)
)

// dmlExamples returns the command lines of a page that mention dml as a
// command: the lines of shell blocks (fenced sh/bash/shell, and
// README-style indented blocks; untagged fences and indented box drawings
// are diagrams and formats), the "$ " lines of console blocks,
// the dml lines of YAML blocks (workflow steps) and inline code spans
// that start with "dml ". Continuation lines are joined; here-documents
// are skipped.
func dmlExamples(page string) []docExample {
	var (
		out     []docExample
		fence   = "" // the fenced block's language; "-" outside a block
		inFence bool
		pending *docExample
		heredoc string
	)
	emit := func(ex docExample) {
		if strings.Contains(ex.text, "dml") {
			out = append(out, ex)
		}
	}
	lines := strings.Split(page, "\n")
	for i, line := range lines {
		if heredoc != "" {
			if strings.TrimSpace(line) == heredoc {
				heredoc = ""
			}
			continue
		}
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			if inFence {
				inFence = false
			} else {
				inFence, fence = true, m[1]
			}
			pending = nil
			continue
		}
		if pending != nil {
			pending.text += " " + strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "\\"))
			if !strings.HasSuffix(strings.TrimSpace(line), "\\") {
				emit(*pending)
				pending = nil
			}
			continue
		}
		var cmdText string
		switch {
		case inFence && fence == "console":
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "$ "); ok {
				cmdText = rest
			}
		case inFence && (fence == "sh" || fence == "bash" || fence == "shell"):
			cmdText = strings.TrimSpace(line)
		case inFence && fence == "yaml":
			if t := strings.TrimSpace(line); strings.HasPrefix(t, "dml ") {
				cmdText = t
			}
		case inFence:
		case indentedCode.MatchString(line):
			if !inDiagram(lines, i) {
				cmdText = strings.TrimSpace(line)
			}
		default:
			for _, m := range inlineDMLRE.FindAllStringSubmatch(line, -1) {
				emit(docExample{line: i + 1, text: m[1], inline: true})
			}
		}
		if cmdText == "" || strings.HasPrefix(cmdText, "#") {
			continue
		}
		if m := heredocRE.FindStringSubmatch(cmdText); m != nil {
			heredoc = m[1]
		}
		if strings.HasSuffix(cmdText, "\\") {
			pending = &docExample{line: i + 1, text: strings.TrimSpace(strings.TrimSuffix(cmdText, "\\"))}
			continue
		}
		emit(docExample{line: i + 1, text: cmdText})
	}
	return out
}

// inDiagram reports whether line i belongs to a block (lines between two
// blank lines) drawn with box-drawing characters: a picture, not commands.
func inDiagram(lines []string, i int) bool {
	lo, hi := i, i
	for lo > 0 && strings.TrimSpace(lines[lo-1]) != "" {
		lo--
	}
	for hi < len(lines)-1 && strings.TrimSpace(lines[hi+1]) != "" {
		hi++
	}
	return slices.ContainsFunc(lines[lo:hi+1], func(l string) bool {
		return strings.ContainsFunc(l, func(r rune) bool { return r >= 0x2500 && r <= 0x257F })
	})
}

// dmlInvocations returns the arguments of every dml command in a shell
// line: commands joined by ;, &&, ||, | and inside $( ), after leading
// VAR=value assignments, without redirections and comments. <placeholder>
// words count as one word; [optional] brackets are dropped.
func dmlInvocations(line string) [][]string {
	line = placeholder.ReplaceAllString(line, "PLACEHOLDER")
	var (
		out      [][]string
		words    []string
		word     strings.Builder
		inWord   bool
		skipNext bool // the word after a redirection is its target
	)
	endWord := func() {
		if !inWord {
			return
		}
		w := strings.TrimSuffix(strings.TrimPrefix(word.String(), "["), "]")
		if skipNext {
			skipNext = false
		} else if w != "" {
			words = append(words, w)
		}
		word.Reset()
		inWord = false
	}
	endCommand := func() {
		endWord()
		for len(words) > 0 && envAssignRE.MatchString(words[0]) {
			words = words[1:]
		}
		if len(words) > 0 && words[0] == "dml" {
			out = append(out, slices.Clone(words[1:]))
		}
		words = words[:0]
	}
	// inner returns the text of a $( ) starting at line[i] (at "$("), and
	// the index just past its ")".
	inner := func(i int) (string, int) {
		depth := 0
		for j := i + 1; j < len(line); j++ {
			switch line[j] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					return line[i+2 : j], j + 1
				}
			}
		}
		return line[i+2:], len(line)
	}
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == '$' && i+1 < len(line) && line[i+1] == '(':
			text, next := inner(i)
			out = append(out, dmlInvocations(text)...)
			word.WriteString("SUBST")
			inWord = true
			i = next
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				j = len(line) - i - 1
			}
			word.WriteString(line[i+1 : i+1+j])
			inWord = true
			i += j + 2
		case c == '"':
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				} else if line[j] == '$' && j+1 < len(line) && line[j+1] == '(' {
					text, next := inner(j)
					out = append(out, dmlInvocations(text)...)
					word.WriteString("SUBST")
					j = next
					continue
				} else {
					word.WriteByte(line[j])
				}
				j++
			}
			inWord = true
			i = j + 1
		case c == '\\' && i+1 < len(line):
			word.WriteByte(line[i+1])
			inWord = true
			i += 2
		case c == '#' && !inWord:
			endCommand()
			return out
		case c == ' ' || c == '\t':
			endWord()
			i++
		case c == ';' || c == '&' || c == '|' || c == '(' || c == ')':
			endCommand()
			i++
		case c == '>' || c == '<':
			if inWord && (word.String() == "2" || word.String() == "1") {
				word.Reset()
				inWord = false
			}
			endWord()
			for i < len(line) && (line[i] == '>' || line[i] == '<' || line[i] == '&') {
				i++
			}
			if i < len(line) && line[i] != ' ' {
				// 2>&1 and >file: the target is glued to the operator.
				for i < len(line) && line[i] != ' ' {
					i++
				}
			} else {
				skipNext = true
			}
		default:
			word.WriteByte(c)
			inWord = true
			i++
		}
	}
	endCommand()
	return out
}

// policyExample is a trust policy shown on a page.
type policyExample struct {
	page, where, text string
}

// policyExamples returns the fenced yaml and json blocks with a top-level
// "rules", the here-documents written to a *.yaml or *.json file in sh
// blocks, and the files `$ cat`-ed in console blocks that have "rules".
func policyExamples(t *testing.T, page, text string) []policyExample {
	t.Helper()
	var out []policyExample
	lines := strings.Split(text, "\n")
	hasRules := func(body string) bool {
		var doc map[string]any
		return yaml.Unmarshal([]byte(body), &doc) == nil && doc["rules"] != nil
	}
	for i := 0; i < len(lines); i++ {
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		lang, start := m[1], i
		j := i + 1
		for j < len(lines) && !fenceRE.MatchString(lines[j]) {
			j++
		}
		block := lines[i+1 : min(j, len(lines))]
		i = j
		switch lang {
		case "yaml", "json":
			body := strings.Join(block, "\n")
			if hasRules(body) {
				out = append(out, policyExample{page, fmt.Sprintf("%s block at line %d", lang, start+1), body})
			}
		case "sh", "console":
			for k := 0; k < len(block); k++ {
				l := strings.TrimSpace(block[k])
				var file string
				if hd := heredocRE.FindStringSubmatch(l); hd != nil && lang == "sh" {
					var body []string
					for k++; k < len(block) && strings.TrimSpace(block[k]) != hd[1]; k++ {
						body = append(body, block[k])
					}
					if f := strings.Fields(l); len(f) >= 3 && f[1] == ">" {
						file = f[2]
					}
					if b := strings.Join(body, "\n"); hasRules(b) {
						out = append(out, policyExample{page, "here-document " + file, b})
					}
				} else if name, ok := strings.CutPrefix(l, "$ cat "); ok && lang == "console" {
					var body []string
					for k++; k < len(block) && !strings.HasPrefix(strings.TrimSpace(block[k]), "$ "); k++ {
						body = append(body, block[k])
					}
					k--
					if b := strings.Join(body, "\n"); hasRules(b) {
						out = append(out, policyExample{page, "$ cat " + name, b})
					}
				}
			}
		}
	}
	return out
}

// TestDocsPolicies parses every trust policy the pages show with the
// server's parser; the one shown as bad must fail with the message the
// page prints.
func TestDocsPolicies(t *testing.T) {
	n := 0
	for page, text := range docPages(t) {
		for _, ex := range policyExamples(t, page, text) {
			n++
			_, err := signing.ParsePolicy([]byte(ex.text))
			if strings.Contains(ex.where, "bad.yaml") {
				if err == nil {
					t.Errorf("%s, %s: the bad example parses", page, ex.where)
					continue
				}
				for _, l := range strings.Split(err.Error(), "\n") {
					if !strings.Contains(text, l) {
						t.Errorf("%s, %s: the page does not show the parser's %q", page, ex.where, l)
					}
				}
				continue
			}
			if err != nil {
				t.Errorf("%s, %s: %v\n%s", page, ex.where, err, ex.text)
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d policy examples found", n)
	}
}

// TestDocsTellOnePolicyStory: the policy of the README, of the quickstart
// (which proves it admits a signed and tested push) and the first one of
// docs/signing.md, in YAML and in JSON, are the same policy.
func TestDocsTellOnePolicyStory(t *testing.T) {
	pages := docPages(t)
	first := func(page, kind string) policyExample {
		t.Helper()
		for _, ex := range policyExamples(t, page, pages[page]) {
			if strings.HasPrefix(ex.where, kind) {
				return ex
			}
		}
		t.Fatalf("%s shows no policy (%s)", page, kind)
		return policyExample{}
	}
	readme, quick, signingYAML, signingJSON := first("README.md", "yaml"), first("docs/quickstart.md", "here-document policy.yaml"),
		first("docs/signing.md", "yaml"), first("docs/signing.md", "json")
	for _, ex := range []policyExample{quick, signingYAML} {
		if strings.TrimSpace(ex.text) != strings.TrimSpace(readme.text) {
			t.Errorf("%s (%s) differs from the README's policy:\n%s\nREADME:\n%s", ex.page, ex.where, ex.text, readme.text)
		}
	}
	want, err := signing.ParsePolicy([]byte(readme.text))
	if err != nil {
		t.Fatal(err)
	}
	got, err := signing.ParsePolicy([]byte(signingJSON.text))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("docs/signing.md's JSON policy differs from its YAML one:\n%+v\n%+v", got, want)
	}
	// The story the pages tell: payments/api is pushed signed by
	// payments-ci with a test result, and that is all its rule needs.
	r := want.RuleFor("payments/api")
	if r == nil || r.Signatures == nil || r.Signatures.Threshold > 1 || !slices.Equal(r.Signatures.Keys, []string{"payments-ci"}) ||
		len(r.Attestations) != 1 || r.Attestations[0].PredicateType != "https://in-toto.io/attestation/test-result/v0.1" {
		t.Errorf("the policy's rule for payments/api is not the one the README and quickstart push to: %+v", r)
	}
}
