package main

import (
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// The build sets these (Dockerfile, release builds):
//
//	go build -ldflags "-X main.version=v1.5.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/dml
//
// They are package variables because -X can set nothing else. Empty, the
// module version and VCS revision that the go command stamps into every
// build (runtime/debug.ReadBuildInfo) are used instead.
var (
	version string
	commit  string
)

// versionInfo is what `dml version` prints.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// Modified: the build's working tree had uncommitted changes.
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// buildVersion combines the -X values with the build info: an -X value
// wins, the build info fills what is missing, "unknown" what neither has.
func buildVersion(ldVersion, ldCommit string, bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: ldVersion, Commit: ldCommit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if v.Version == "" && bi.Main.Version != "" {
			v.Version = bi.Main.Version // "(devel)" when built from a source tree without VCS stamping
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if ldCommit == "" {
					v.Commit = s.Value
				}
			case "vcs.modified":
				v.Modified = ldCommit == "" && s.Value == "true"
			}
		}
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
	}
	if v.Version == "" {
		v.Version = "unknown"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

func currentVersion() versionInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return buildVersion(version, commit, bi)
}

func printVersion(w io.Writer, a *cli) error {
	v := currentVersion()
	return a.emit(w, v, func(w io.Writer) error {
		c := v.Commit
		if v.Modified {
			c += " (modified)"
		}
		return printFields(w, [][2]string{{"version", v.Version}, {"commit", c}, {"go", v.Go}, {"platform", v.Platform}})
	})
}

func newVersionCmd(a *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit of this build",
		Long: `Print the version and commit this dml binary was built from (set with -ldflags -X
main.version=... -X main.commit=..., else what the go command recorded), and the Go version
and platform. dml --version prints the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return printVersion(cmd.OutOrStdout(), a) },
	}
}
