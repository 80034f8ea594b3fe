package console

import (
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/opencontainers/go-digest"
)

// The environments matrix: what runs in each environment now, and since
// when, read from the deployments the releases record. An environment runs
// many artifacts, brought by different releases: for each artifact name,
// it runs the version of the most recent successful deployment (not
// rolled back) of a release that includes it. A rollback returns the
// artifact to what ran before.

type environmentsData struct {
	Envs []envNow
	// Matrix has one row per artifact name running anywhere, one cell
	// per environment (in the order of Envs).
	Matrix []matrixRow
}

type envNow struct {
	Env string
	// Releases are those that bring at least one artifact running in the
	// environment now, most recent first.
	Releases []deployedRelease
	// Since the last successful deployment: deployments under way, failed
	// or rolled back, newest first.
	Other []deployedRelease
}

type deployedRelease struct {
	Release, Href, Title, ChangeRef string
	Deployment                      lifecycle.Deployment
	Since                           time.Time
	Artifacts                       []lifecycle.ReleaseArtifact
}

type matrixRow struct {
	Artifact string
	Cells    []matrixCell
}

// matrixCell is one artifact in one environment; Version "" when it
// does not run there.
type matrixCell struct {
	Version string
	Digest  digest.Digest
	Release string
	Href    string
	Since   time.Time
	// Differs is set when another environment runs another version.
	Differs bool
}

func (c *Console) environments(v *view) error {
	if err := v.require("release_list"); err != nil {
		return err
	}
	// Every release but the cancelled ones (which were never deployed):
	// those not deployed yet name environments nothing reached so far.
	rels, err := c.releasesIn(v.r.Context(), activeStates...)
	if err != nil {
		return err
	}
	closed, err := c.releasesIn(v.r.Context(), lifecycle.ReleaseClosed)
	if err != nil {
		return err
	}
	return v.render(http.StatusOK, "environments", "Environments", environmentsOf(append(rels, closed...)))
}

func environmentsOf(rels []lifecycle.Release) environmentsData {
	sort.SliceStable(rels, func(i, j int) bool { return rels[i].CreatedAt.Before(rels[j].CreatedAt) })
	var order, arts []string
	byEnv := map[string][]deployedRelease{}
	for _, r := range rels {
		for _, env := range r.Plan.Environments {
			if !slices.Contains(order, env) {
				order = append(order, env)
			}
		}
		for _, d := range r.Deployments {
			since := d.StartedAt
			if d.FinishedAt != nil {
				since = *d.FinishedAt
			}
			byEnv[d.Environment] = append(byEnv[d.Environment], deployedRelease{Release: r.Name, Href: releaseHref(r.Name), Title: r.Plan.Title,
				ChangeRef: r.Plan.ChangeRef, Deployment: d, Since: since, Artifacts: r.Artifacts})
		}
	}
	data := environmentsData{}
	running := make([]map[string]matrixCell, len(order))
	for i, env := range order {
		deps := byEnv[env]
		sort.SliceStable(deps, func(i, j int) bool { return deps[i].Since.After(deps[j].Since) })
		now := envNow{Env: env}
		running[i] = map[string]matrixCell{}
		succeeded := false
		for _, d := range deps {
			if d.Deployment.Status != lifecycle.DeploymentSucceeded {
				if !succeeded {
					now.Other = append(now.Other, d)
				}
				continue
			}
			succeeded = true
			brings := false
			for _, a := range d.Artifacts {
				if _, newer := running[i][a.Name]; newer {
					continue
				}
				brings = true
				running[i][a.Name] = matrixCell{Version: a.Version, Digest: a.Digest, Release: d.Release, Href: artifactHref(a.Name, a.Version), Since: d.Since}
				if !slices.Contains(arts, a.Name) {
					arts = append(arts, a.Name)
				}
			}
			if brings && !slices.ContainsFunc(now.Releases, func(x deployedRelease) bool { return x.Release == d.Release }) {
				now.Releases = append(now.Releases, d)
			}
		}
		data.Envs = append(data.Envs, now)
	}
	slices.Sort(arts)
	for _, name := range arts {
		row := matrixRow{Artifact: name, Cells: make([]matrixCell, len(order))}
		for i := range order {
			row.Cells[i] = running[i][name]
		}
		for i := range row.Cells {
			for _, other := range row.Cells {
				if row.Cells[i].Version != "" && other.Digest != row.Cells[i].Digest {
					row.Cells[i].Differs = true
				}
			}
		}
		data.Matrix = append(data.Matrix, row)
	}
	return data
}
