package console

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// routeInbox registers "Waiting for me", the console's home page, and its
// live region.
func (c *Console) routeInbox(m *http.ServeMux) {
	m.HandleFunc("GET "+Prefix+"{$}", c.page(c.inbox))
	m.HandleFunc("GET "+Prefix+"live/inbox", c.page(c.inboxLive))
}

// inboxData is what waits for one principal: the gates it may decide
// (approvers), the deployments it may record or finish (deployers), the
// reviews to file (release managers). Each list is there only for a
// principal whose roles may act on it, and the actions are the API's
// (the access matrix) narrowed as the domain narrows them.
type inboxData struct {
	Approver, Deployer, Manager bool
	Gates                       []inboxGate
	Deploys                     []inboxDeploy
	Running                     []inboxDeploy
	Reviews                     []inboxReview
}

// Empty reports whether nothing waits at all.
func (d inboxData) Empty() bool {
	return len(d.Gates)+len(d.Deploys)+len(d.Running)+len(d.Reviews) == 0
}

type inboxGate struct {
	Release releaseCard
	Gate    gateInfo
	// Covers is what the gate approves, as facts to read before deciding.
	Covers []fact
	Href   string
}

type fact struct {
	Label, Value string
	Code         bool
}

type inboxDeploy struct {
	Release    releaseCard
	Env        string
	Approvers  []string
	Artifacts  []string
	Deployment *lifecycle.Deployment
	Href       string
}

type inboxReview struct {
	Release releaseCard
	Envs    []envStatus
	Href    string
}

func (c *Console) inbox(v *view) error {
	data, err := c.inboxFor(v)
	if err != nil {
		return err
	}
	return v.render(http.StatusOK, "inbox", "Waiting for me", data)
}

func (c *Console) inboxLive(v *view) error {
	data, err := c.inboxFor(v)
	if err != nil {
		return err
	}
	return v.fragment("inbox", "rel-inbox", data)
}

func (c *Console) inboxFor(v *view) (inboxData, error) {
	ctx := v.r.Context()
	data := inboxData{
		Approver: v.can("release_approval"),
		Deployer: v.can("release_deployment_record"),
		Manager:  v.can("release_review"),
	}
	if !data.Approver && !data.Deployer && !data.Manager || !v.can("release_list") {
		return data, nil
	}
	rels, err := c.releasesIn(ctx, activeStates...)
	if err != nil {
		return inboxData{}, err
	}
	for _, r := range rels {
		card, err := c.cardOf(ctx, r)
		if err != nil {
			return inboxData{}, err
		}
		if data.Approver {
			for _, g := range card.Waiting {
				if mayDecide(r, v.p, g) != "" {
					continue
				}
				data.Gates = append(data.Gates, inboxGate{Release: card, Gate: g, Covers: c.covers(ctx, r, g), Href: card.Href + "#" + g.Anchor})
			}
		}
		if data.Deployer {
			data.Deploys = append(data.Deploys, deploysFor(r, v.p, card)...)
		}
		if v.can("release_deployment_update") && r.State == lifecycle.ReleaseDeploying {
			for _, d := range r.Deployments {
				if d.Status == lifecycle.DeploymentInProgress && slices.Contains(v.p.Environments, d.Environment) {
					data.Running = append(data.Running, inboxDeploy{Release: card, Env: d.Environment, Deployment: &d, Href: card.Href + "#env-" + d.Environment})
				}
			}
		}
		if data.Manager && reviewDue(r) {
			data.Reviews = append(data.Reviews, inboxReview{Release: card, Envs: card.Envs, Href: card.Href + "#review"})
		}
	}
	return data, nil
}

// deploysFor lists the deployments p may record for r now that have not
// been made: authorised environments of p's, in plan order, with neither a
// successful deployment nor one under way.
func deploysFor(r lifecycle.Release, p access.Principal, card releaseCard) []inboxDeploy {
	var out []inboxDeploy
	for _, env := range deployableEnvs(r, p) {
		if d, ok := latestDeployment(r, env); succeededIn(r, env) || ok && d.Status == lifecycle.DeploymentInProgress {
			continue
		}
		d := inboxDeploy{Release: card, Env: env, Href: card.Href + "#env-" + env}
		for _, a := range r.Approvals {
			if a.Gate == lifecycle.DeployGate(env) && a.Decision == lifecycle.DecisionApprove && !a.Discarded && a.Digest == r.ManifestDigest {
				d.Approvers = append(d.Approvers, a.By)
			}
		}
		for _, a := range r.Artifacts {
			d.Artifacts = append(d.Artifacts, a.Name+":"+a.Version)
		}
		out = append(out, d)
	}
	return out
}

// reviewDue reports whether r's review is to be filed: deployed
// everywhere, or deploying with nothing under way after a deployment that
// failed or was rolled back (a release that will not go out everywhere is
// finished by its review).
func reviewDue(r lifecycle.Release) bool {
	if !slices.Contains(lifecycle.AllowedActions(r), "review") {
		return false
	}
	switch r.State {
	case lifecycle.ReleaseDeployed:
		return true
	case lifecycle.ReleaseDeploying:
		return slices.ContainsFunc(r.Deployments, func(d lifecycle.Deployment) bool {
			return d.Status == lifecycle.DeploymentFailed || d.Status == lifecycle.DeploymentRolledBack
		})
	}
	return false
}

// covers lists what deciding gate g of r approves.
func (c *Console) covers(ctx context.Context, r lifecycle.Release, g gateInfo) []fact {
	var out []fact
	switch part := lifecycle.ApprovedPart(g.Gate); {
	case part == lifecycle.PartPlan:
		p := r.Plan
		out = append(out,
			fact{Label: "Change", Value: p.ChangeRef},
			fact{Label: "Environments", Value: strings.Join(p.Environments, " → ")},
			fact{Label: "Window", Value: orDash(windowText(p.Window))},
			fact{Label: "Risk", Value: orDash(p.Risk)},
			fact{Label: "Backout plan", Value: orDash(p.BackoutPlan)},
			fact{Label: "Plan digest", Value: string(g.Digest), Code: true})
	case part == lifecycle.PartArtifacts:
		for _, a := range r.Artifacts {
			state := "unknown"
			if cur, err := c.dml.Catalog.Artifact(ctx, a.Name, a.Version); err == nil {
				state = string(cur.State)
				if cur.Digest != a.Digest {
					state = "changed digest"
				}
			}
			out = append(out, fact{Label: a.Name + ":" + a.Version, Value: state + " · " + a.Digest.String(), Code: true})
		}
		out = append(out, fact{Label: "Seals as", Value: string(g.Digest), Code: true})
	case part == lifecycle.PartEmergency:
		if em := r.Emergency; em != nil {
			out = append(out,
				fact{Label: "Emergency change", Value: em.Reason},
				fact{Label: "Deploys outside the window until", Value: em.Until.UTC().Format("2006-01-02 15:04") + " UTC"},
				fact{Label: "Requested by", Value: em.RequestedBy},
				fact{Label: "Request digest", Value: string(g.Digest), Code: true})
		}
	case part == lifecycle.PartReview:
		if rv := r.Review; rv != nil {
			out = append(out,
				fact{Label: "Outcome", Value: strings.ReplaceAll(rv.Outcome, "_", " ")},
				fact{Label: "Summary", Value: rv.Summary},
				fact{Label: "Objectives met", Value: yesNo(rv.ObjectivesMet, true)},
				fact{Label: "Filed by", Value: rv.By})
		}
	default: // a deploy gate: the sealed build, to one environment
		env := strings.TrimPrefix(g.Gate, "deploy:")
		arts := make([]string, len(r.Artifacts))
		for i, a := range r.Artifacts {
			arts[i] = a.Name + ":" + a.Version
		}
		out = append(out,
			fact{Label: "Environment", Value: env},
			fact{Label: "Artifacts", Value: strings.Join(arts, ", ")},
			fact{Label: "Sealed manifest", Value: string(r.ManifestDigest), Code: true})
		var done []string
		for _, e := range r.Plan.Environments {
			if succeededIn(r, e) {
				done = append(done, e)
			}
		}
		out = append(out, fact{Label: "Deployed so far", Value: orDash(strings.Join(done, ", "))})
	}
	return out
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}
