package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// instruction is one Dockerfile instruction: its keyword (upper case) and
// its arguments with line continuations joined.
type instruction struct {
	line    int
	keyword string
	args    string
}

// parseDockerfile splits a Dockerfile into instructions: comments and
// blank lines dropped, lines ending in a backslash joined to the next.
// It is the part of the format this image uses, not a full parser (no
// escape directive, no heredocs).
func parseDockerfile(t *testing.T, src string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		kw, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, keyword: strings.ToUpper(kw), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends in a line continuation")
	}
	return out
}

// execForm decodes the JSON (exec) form of ENTRYPOINT, CMD or
// HEALTHCHECK CMD: the shell form would need a shell, which distroless
// does not have.
func execForm(t *testing.T, in instruction, args string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("Dockerfile line %d: %s %s is not the exec (JSON) form: %v", in.line, in.keyword, args, err)
	}
	return argv
}

// envPairs parses ENV KEY=VALUE [KEY=VALUE...] (values without quotes or
// spaces, as this image's are).
func envPairs(t *testing.T, in instruction) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range strings.Fields(in.args) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || strings.ContainsAny(v, `"'`) {
			t.Fatalf("Dockerfile line %d: ENV %s: want KEY=VALUE pairs without quotes", in.line, in.args)
		}
		out[k] = v
	}
	return out
}

var pinnedImage = regexp.MustCompile(`^\S+@sha256:[0-9a-f]{64}$`)

// TestDockerfile checks the image's Dockerfile without a Docker engine:
// every base image pinned by digest; the server's defaults in ENV
// (DML_LISTEN, DML_DATA_DIR, each the variable of a dml serve flag), so
// that arguments given to `docker run` add to them instead of replacing
// them — ENTRYPOINT is /dml serve and there is no CMD; the data
// directory is the volume; the version and commit are stamped; the
// HEALTHCHECK runs dml healthcheck; every flag the Dockerfile names
// exists on its command.
func TestDockerfile(t *testing.T) {
	src, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		stages                        int
		env                           = map[string]string{}
		entrypoint, cmd, healthcheck  []string
		volumes                       []string
		args                          []string
		build                         string
		sawEntrypoint, sawHealthcheck bool
	)
	for _, in := range parseDockerfile(t, string(src)) {
		switch in.keyword {
		case "FROM":
			stages++
			image := strings.Fields(in.args)[0]
			if !pinnedImage.MatchString(image) {
				t.Errorf("Dockerfile line %d: FROM %s is not pinned by digest (IMAGE:TAG@sha256:...)", in.line, image)
			}
			// What the image runs is the last stage's.
			env, entrypoint, cmd, healthcheck, volumes = map[string]string{}, nil, nil, nil, nil
			sawEntrypoint, sawHealthcheck = false, false
		case "ENV":
			for k, v := range envPairs(t, in) {
				env[k] = v
			}
		case "ENTRYPOINT":
			entrypoint, sawEntrypoint = execForm(t, in, in.args), true
		case "CMD":
			cmd = execForm(t, in, in.args)
		case "HEALTHCHECK":
			rest := in.args
			for strings.HasPrefix(rest, "--") {
				_, rest, _ = strings.Cut(rest, " ")
				rest = strings.TrimSpace(rest)
			}
			c, argv, ok := strings.Cut(rest, " ")
			if !ok || strings.ToUpper(c) != "CMD" {
				t.Fatalf("Dockerfile line %d: HEALTHCHECK %s: want HEALTHCHECK [OPTIONS] CMD [...]", in.line, in.args)
			}
			healthcheck, sawHealthcheck = execForm(t, in, strings.TrimSpace(argv)), true
		case "VOLUME":
			volumes = execForm(t, in, in.args)
		case "ARG":
			args = append(args, strings.Fields(in.args)[0])
		case "RUN":
			if strings.Contains(in.args, "go build") {
				build = in.args
			}
		}
	}
	if stages < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and the image", stages)
	}

	want := map[string]string{"DML_LISTEN": "0.0.0.0:8080", "DML_DATA_DIR": "/data"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("the image's ENV %s = %q, want %q", k, env[k], v)
		}
	}
	for k := range env {
		name, ok := strings.CutPrefix(k, "DML_")
		if !ok {
			continue
		}
		f := serve.Flags().Lookup(strings.ToLower(strings.ReplaceAll(name, "_", "-")))
		if f == nil || f.Annotations[envAnnotation] == nil {
			t.Errorf("the image sets %s, which no flag of dml serve reads", k)
		}
	}
	if !slices.Equal(entrypoint, []string{"/dml", "serve"}) || !sawEntrypoint {
		t.Errorf("ENTRYPOINT %q, want [\"/dml\", \"serve\"]", entrypoint)
	}
	if cmd != nil {
		t.Errorf("the image has CMD %q: arguments given to docker run would replace it; put defaults in ENV", cmd)
	}
	if !slices.Contains(volumes, env["DML_DATA_DIR"]) {
		t.Errorf("VOLUME %q does not hold DML_DATA_DIR %s", volumes, env["DML_DATA_DIR"])
	}
	if !sawHealthcheck || len(healthcheck) < 2 || healthcheck[0] != "/dml" || healthcheck[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK CMD %q, want [\"/dml\", \"healthcheck\", ...]", healthcheck)
	}
	for _, argv := range [][]string{append(slices.Clone(entrypoint), cmd...), healthcheck} {
		if len(argv) < 2 || argv[0] != "/dml" {
			continue
		}
		checkFlagsExist(t, root, argv[1:])
	}

	// Stamped: dml version prints what the build arguments say.
	for _, a := range []string{"VERSION", "COMMIT"} {
		if !slices.Contains(args, a) && !slices.ContainsFunc(args, func(s string) bool { return strings.HasPrefix(s, a+"=") }) {
			t.Errorf("the build stage has no ARG %s", a)
		}
	}
	for _, x := range []string{"-X main.version=${VERSION}", "-X main.commit=${COMMIT}"} {
		if !strings.Contains(build, x) {
			t.Errorf("the go build (%q) does not stamp %s", build, x)
		}
	}
}

// checkFlagsExist fails for each --flag in argv (a dml command line
// without the program) that the command it names does not have.
func checkFlagsExist(t *testing.T, root *cobra.Command, argv []string) {
	t.Helper()
	c, rest, err := root.Find(argv)
	if err != nil {
		t.Errorf("dml %s: %v", strings.Join(argv, " "), err)
		return
	}
	for _, a := range rest {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		if c.Flag(name) == nil {
			t.Errorf("dml %s: %s has no flag --%s", strings.Join(argv, " "), c.CommandPath(), name)
		}
	}
}

// dockerfileLDFlags is the -ldflags of the Dockerfile's go build, with
// its build arguments VERSION and COMMIT set: TestBinaryVersionAndExitStatus
// builds with them and runs dml version.
func dockerfileLDFlags(t testing.TB, version, commit string) string {
	t.Helper()
	src, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`-ldflags="([^"]*)"`).FindSubmatch(src)
	if m == nil {
		t.Fatal(`the Dockerfile's go build has no -ldflags="..."`)
	}
	return strings.NewReplacer("${VERSION}", version, "${COMMIT}", commit).Replace(string(m[1]))
}
