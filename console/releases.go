package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/auditlog"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/releases/names"
	"github.com/opencontainers/go-digest"
)

// routeReleases registers the releases board, the release page and its
// forms, and the environments matrix. Live regions (static/console.js)
// are under /ui/live/, apart from the pages, so that no release name can
// shadow them.
func (c *Console) routeReleases(m *http.ServeMux) {
	m.HandleFunc("GET "+Prefix+"releases", c.page(c.board))
	m.HandleFunc("GET "+Prefix+"live/board", c.page(c.boardLive))
	m.HandleFunc("GET "+Prefix+"releases/{name}", c.page(c.release))
	m.HandleFunc("GET "+Prefix+"live/releases/{name}/gates", c.page(c.releaseLive("rel-gates")))
	m.HandleFunc("GET "+Prefix+"live/releases/{name}/deployments", c.page(c.releaseLive("rel-deployments")))
	m.HandleFunc("POST "+Prefix+"releases/{name}/decision", c.page(c.decide))
	m.HandleFunc("POST "+Prefix+"releases/{name}/deployments", c.page(c.recordDeployment))
	m.HandleFunc("POST "+Prefix+"releases/{name}/deployments/{id}", c.page(c.updateDeployment))
	m.HandleFunc("POST "+Prefix+"releases/{name}/review", c.page(c.fileReview))
	m.HandleFunc("POST "+Prefix+"releases/{name}/cancel", c.page(c.cancelRelease))
	m.HandleFunc("GET "+Prefix+"environments", c.page(c.environments))
}

// Links to the pages of the other areas, in one place.
func releaseHref(name string) string { return Prefix + "releases/" + url.PathEscape(name) }

func auditRecordHref(index int64) string { return fmt.Sprintf("%saudit/records/%d", Prefix, index) }

// boardStates are the board's columns, in ITIL order; cancelled releases
// are listed under it.
var boardStates = []lifecycle.ReleaseState{
	lifecycle.ReleasePlanning, lifecycle.ReleaseBuilding, lifecycle.ReleaseReleased, lifecycle.ReleaseDeploying,
	lifecycle.ReleaseDeployed, lifecycle.ReleaseReview, lifecycle.ReleaseClosed,
}

// activeStates are the states in which a release can still wait on
// someone.
var activeStates = boardStates[:len(boardStates)-1]

// boardFinished is how many closed and cancelled releases the board shows
// (the most recent); the list of a state shows them all.
const boardFinished = 8

// listPageSize is the length of a page of the list of one state.
const listPageSize = 50

// releasesIn lists every release in the states given (every release when
// none), following the pages.
func (c *Console) releasesIn(ctx context.Context, states ...lifecycle.ReleaseState) ([]lifecycle.Release, error) {
	if len(states) == 0 {
		states = []lifecycle.ReleaseState{""}
	}
	var out []lifecycle.Release
	for _, st := range states {
		cursor := ""
		for {
			page, next, err := c.dml.Releases.Releases(ctx, lifecycle.ReleaseFilter{State: st, Limit: names.MaxPageSize, Cursor: cursor})
			if err != nil {
				return nil, err
			}
			out = append(out, page...)
			if next == "" || next == cursor {
				break
			}
			cursor = next
		}
	}
	return out, nil
}

// gateInfo is one gate of a release as the console shows it.
type gateInfo struct {
	Gate, Label, Anchor string
	// Covers says in one sentence what approving the gate authorises.
	Covers string
	// Digest is what an approval binds to now ("" until it is settled).
	Digest     digest.Digest
	Required   int
	Received   int
	Approvers  []string
	Authorized bool
	Open       bool
	// Decisions are every decision on record for the gate, oldest first.
	Decisions []decisionRow
}

// Waiting reports whether the gate can be decided now and is not yet
// authorised: the release waits on it.
func (g gateInfo) Waiting() bool { return g.Open && !g.Authorized }

type decisionRow struct {
	lifecycle.Approval
	// Counts says whether the decision still counts towards the quorum,
	// and if not, why.
	Counts bool
	Why    string
}

func gateLabel(gate string) string {
	switch {
	case gate == lifecycle.GatePlan:
		return "Plan"
	case gate == lifecycle.GateBuild:
		return "Build"
	case gate == lifecycle.GateClose:
		return "Close"
	case strings.HasPrefix(gate, "deploy:"):
		return "Deploy to " + strings.TrimPrefix(gate, "deploy:")
	case gate == lifecycle.GateEmergency:
		return "Emergency change"
	}
	return gate
}

func gateAnchor(gate string) string { return "gate-" + strings.ReplaceAll(gate, ":", "-") }

func gateCovers(r lifecycle.Release, gate string) string {
	switch {
	case gate == lifecycle.GatePlan:
		return "The plan: change " + r.Plan.ChangeRef + ", its environments, window, risk and backout plan, and how many approvals each gate needs."
	case gate == lifecycle.GateBuild:
		return fmt.Sprintf("The build: the %d artifact(s) below, each admitted, sealed into a release manifest the server signs.", len(r.Artifacts))
	case gate == lifecycle.GateClose:
		return "The post-implementation review; authorising it closes the release."
	case strings.HasPrefix(gate, "deploy:"):
		return "Deploying the sealed release manifest to " + strings.TrimPrefix(gate, "deploy:") + "."
	case gate == lifecycle.GateEmergency && r.Emergency != nil:
		return "Deploying outside the change window until " + r.Emergency.Until.UTC().Format("2006-01-02 15:04") + " UTC, requested by " +
			r.Emergency.RequestedBy + ": " + r.Emergency.Reason
	}
	return ""
}

// gatesOf describes every gate of r in process order, with the decisions
// on record.
func (c *Console) gatesOf(ctx context.Context, r lifecycle.Release) ([]gateInfo, error) {
	views, err := c.dml.Releases.GateViews(ctx, r)
	if err != nil {
		return nil, err
	}
	out := make([]gateInfo, len(views))
	for i, gv := range views {
		g := gateInfo{Gate: gv.Gate, Label: gateLabel(gv.Gate), Anchor: gateAnchor(gv.Gate), Covers: gateCovers(r, gv.Gate),
			Digest: gv.ExpectedDigest, Required: gv.Required, Received: len(gv.Approvers), Approvers: gv.Approvers,
			Authorized: gv.Authorized, Open: gv.Open}
		for _, a := range r.Approvals {
			if a.Gate != gv.Gate {
				continue
			}
			row := decisionRow{Approval: a}
			switch {
			case a.Decision == lifecycle.DecisionReject:
				row.Why = "rejected"
			case a.Discarded:
				row.Why = "no longer counts: what it approved changed, or the gate was rejected"
			case a.Digest != gv.ExpectedDigest:
				row.Why = "approved an earlier digest"
			default:
				row.Counts = true
			}
			g.Decisions = append(g.Decisions, row)
		}
		out[i] = g
	}
	return out, nil
}

// releaseCard is a release as the board shows it.
type releaseCard struct {
	Name, Href, Title, ChangeRef string
	State                        lifecycle.ReleaseState
	// Waiting are the gates the release waits on, with their quorum
	// progress.
	Waiting []gateInfo
	// Envs is where each environment of the plan stands, once sealed.
	Envs      []envStatus
	Note      string
	Rejection *lifecycle.Approval
	UpdatedAt time.Time
}

type envStatus struct {
	Env string
	// Status: a deployment's status, or "authorised" / "waiting" for
	// an environment without one.
	Status, Label string
}

// envStatuses says where each environment of a sealed release stands:
// its latest deployment, else whether it is authorised.
func envStatuses(r lifecycle.Release) []envStatus {
	if r.ManifestDigest == "" {
		return nil
	}
	out := make([]envStatus, 0, len(r.Plan.Environments))
	for _, env := range r.Plan.Environments {
		st := envStatus{Env: env, Status: "waiting", Label: "not authorised"}
		if r.DeployAuthorized(env) {
			st.Status, st.Label = "authorised", "authorised"
		}
		if d, ok := latestDeployment(r, env); ok {
			st.Status, st.Label = string(d.Status), strings.ReplaceAll(string(d.Status), "_", " ")
		}
		out = append(out, st)
	}
	return out
}

// latestDeployment is the most recently started deployment of r to env.
func latestDeployment(r lifecycle.Release, env string) (lifecycle.Deployment, bool) {
	var last lifecycle.Deployment
	found := false
	for _, d := range r.Deployments {
		if d.Environment == env && (!found || !d.StartedAt.Before(last.StartedAt)) {
			last, found = d, true
		}
	}
	return last, found
}

func (c *Console) cardOf(ctx context.Context, r lifecycle.Release) (releaseCard, error) {
	gates, err := c.gatesOf(ctx, r)
	if err != nil {
		return releaseCard{}, err
	}
	card := releaseCard{Name: r.Name, Href: releaseHref(r.Name), Title: r.Plan.Title, ChangeRef: r.Plan.ChangeRef, State: r.State,
		Envs: envStatuses(r), Rejection: r.LastRejection, UpdatedAt: lastActivity(r)}
	for _, g := range gates {
		if g.Waiting() {
			card.Waiting = append(card.Waiting, g)
		}
	}
	switch r.State {
	case lifecycle.ReleaseDeploying:
		if len(card.Waiting) == 0 {
			card.Note = "Every environment is authorised; deployments are under way."
		}
	case lifecycle.ReleaseDeployed:
		card.Note = "Deployed everywhere: the review is to be filed."
	case lifecycle.ReleaseClosed:
		card.Note = "Closed " + card.UpdatedAt.UTC().Format("2006-01-02")
	case lifecycle.ReleaseCancelled:
		card.Note = "Cancelled " + card.UpdatedAt.UTC().Format("2006-01-02")
	}
	return card, nil
}

// lastActivity is when r last changed, by the domain's records (its
// edits, decisions, deployments and review); UpdatedAt when it has none
// later, as for a cancellation, which records no time of its own.
func lastActivity(r lifecycle.Release) time.Time {
	var last time.Time
	later := func(t time.Time) {
		if t.After(last) {
			last = t
		}
	}
	for _, e := range r.Edits {
		later(e.At)
	}
	for _, a := range r.Approvals {
		later(a.At)
	}
	for _, d := range r.Deployments {
		later(d.UpdatedAt)
	}
	if r.Review != nil {
		later(r.Review.At)
	}
	if last.IsZero() || r.State == lifecycle.ReleaseCancelled {
		return r.UpdatedAt
	}
	return last
}

// The board.

type boardData struct {
	Columns   []boardColumn
	Cancelled boardColumn
	Total     int
}

type boardColumn struct {
	State lifecycle.ReleaseState
	Cards []releaseCard
	// More finished releases than the board shows: their list.
	More     int
	MoreHref string
}

type listData struct {
	State    lifecycle.ReleaseState
	States   []lifecycle.ReleaseState
	Releases []releaseCard
	Next     string
}

func (c *Console) board(v *view) error {
	if err := v.require("release_list"); err != nil {
		return err
	}
	if st := v.r.URL.Query().Get("state"); st != "" {
		return c.releaseList(v, lifecycle.ReleaseState(st))
	}
	data, err := c.boardData(v.r.Context())
	if err != nil {
		return err
	}
	return v.render(http.StatusOK, "releases", "Releases", data)
}

func (c *Console) boardLive(v *view) error {
	if err := v.require("release_list"); err != nil {
		return err
	}
	data, err := c.boardData(v.r.Context())
	if err != nil {
		return err
	}
	return v.fragment("releases", "rel-board", data)
}

func (c *Console) boardData(ctx context.Context) (boardData, error) {
	all, err := c.releasesIn(ctx)
	if err != nil {
		return boardData{}, err
	}
	data := boardData{Total: len(all), Cancelled: boardColumn{State: lifecycle.ReleaseCancelled}}
	byState := map[lifecycle.ReleaseState][]releaseCard{}
	for _, r := range all {
		card, err := c.cardOf(ctx, r)
		if err != nil {
			return boardData{}, err
		}
		byState[r.State] = append(byState[r.State], card)
	}
	column := func(st lifecycle.ReleaseState) boardColumn {
		cards := byState[st]
		sort.SliceStable(cards, func(i, j int) bool { return cards[i].UpdatedAt.After(cards[j].UpdatedAt) })
		col := boardColumn{State: st, Cards: cards}
		if (st == lifecycle.ReleaseClosed || st == lifecycle.ReleaseCancelled) && len(cards) > boardFinished {
			col.Cards, col.More, col.MoreHref = cards[:boardFinished], len(cards)-boardFinished, Prefix+"releases?state="+string(st)
		}
		return col
	}
	for _, st := range boardStates {
		data.Columns = append(data.Columns, column(st))
	}
	data.Cancelled = column(lifecycle.ReleaseCancelled)
	return data, nil
}

// releaseList lists the releases in one state, a page at a time.
func (c *Console) releaseList(v *view, st lifecycle.ReleaseState) error {
	ctx := v.r.Context()
	list, next, err := c.dml.Releases.Releases(ctx, lifecycle.ReleaseFilter{State: st, Limit: listPageSize, Cursor: v.r.URL.Query().Get("cursor")})
	if err != nil {
		return err
	}
	data := listData{State: st, States: lifecycle.ReleaseStates}
	for _, r := range list {
		card, err := c.cardOf(ctx, r)
		if err != nil {
			return err
		}
		data.Releases = append(data.Releases, card)
	}
	if next != "" {
		data.Next = Prefix + "releases?state=" + url.QueryEscape(string(st)) + "&cursor=" + url.QueryEscape(next)
	}
	return v.render(http.StatusOK, "releases-list", "Releases: "+string(st), data)
}

// The release page.

// releasePage is everything the release page shows, and the state of its
// forms after a refused submission.
type releasePage struct {
	R         lifecycle.Release
	Href      string
	Phases    []phase
	Artifacts []artifactRow
	Gates     []gateInfo
	Envs      []envTimeline
	// Forms, each present only when the principal may use it now.
	Decisions []*decideForm
	// NotYours are the waiting gates an approver may not decide, and why.
	NotYours []fieldChange
	Deploy   *deployForm
	Updates  []*updateForm
	Review   *reviewForm
	Cancel   *cancelForm
	// Problem is a refusal that belongs to no form.
	Problem string
	// Audit lists the release's audit records, for those who may read
	// the log.
	AuditShown bool
	Audit      []releaseAuditRow
}

type phase struct {
	State   lifecycle.ReleaseState
	Done    bool
	Current bool
}

type artifactRow struct {
	lifecycle.ReleaseArtifact
	Href string
	// State is the artifact's admission state now; Problem says what
	// would block the build gate.
	State   catalog.ArtifactState
	Problem string
}

type envTimeline struct {
	Env         string
	Gate        gateInfo
	Deployments []lifecycle.Deployment
}

// releaseAuditRow is one audit record of a release, on its page.
type releaseAuditRow struct {
	auditlog.Record
	Href    string
	Details string
	// Emergency marks a record of an emergency change, or of what was
	// done under one.
	Emergency bool
}

type decideForm struct {
	Gate    gateInfo
	Digest  digest.Digest
	Shown   string
	Comment string
	Error   string
	Stale   *staleNotice
}

type deployForm struct {
	Envs     []string
	Env      string
	Target   string
	Status   string
	Notes    string
	Statuses []string
	Digests  []digestChoice
	Error    string
}

type digestChoice struct {
	Digest  digest.Digest
	Label   string
	Checked bool
}

type updateForm struct {
	Deployment lifecycle.Deployment
	Next       []string
	Error      string
}

type reviewForm struct {
	Outcomes      []string
	Outcome       string
	Summary       string
	Incidents     string
	ObjectivesMet bool
	Error         string
}

type cancelForm struct {
	Reason string
	Error  string
}

var (
	reviewOutcomes     = []string{"successful", "successful_with_issues", "failed", "rolled_back"}
	deploymentStatuses = []string{string(lifecycle.DeploymentSucceeded), string(lifecycle.DeploymentInProgress), string(lifecycle.DeploymentFailed), string(lifecycle.DeploymentRolledBack)}
)

func (c *Console) release(v *view) error {
	if err := v.require("release_get"); err != nil {
		return err
	}
	pg, err := c.releasePage(v, v.r.PathValue("name"))
	if err != nil {
		return err
	}
	return v.render(http.StatusOK, "release", pg.R.Name, pg)
}

// releaseLive answers one live region of the release page.
func (c *Console) releaseLive(tmpl string) func(v *view) error {
	return func(v *view) error {
		if err := v.require("release_get"); err != nil {
			return err
		}
		ctx := v.r.Context()
		r, err := c.dml.Releases.Release(ctx, v.r.PathValue("name"))
		if err != nil {
			return err
		}
		gates, err := c.gatesOf(ctx, r)
		if err != nil {
			return err
		}
		return v.fragment("release", tmpl, &releasePage{R: r, Href: releaseHref(r.Name), Gates: gates, Envs: timelines(r, gates)})
	}
}

// releasePage reads release name and builds its page for v's principal,
// with the forms it may use now.
func (c *Console) releasePage(v *view, name string) (*releasePage, error) {
	ctx := v.r.Context()
	r, err := c.dml.Releases.Release(ctx, name)
	if err != nil {
		return nil, err
	}
	gates, err := c.gatesOf(ctx, r)
	if err != nil {
		return nil, err
	}
	pg := &releasePage{R: r, Href: releaseHref(r.Name), Phases: phases(r), Gates: gates, Envs: timelines(r, gates)}
	for _, a := range r.Artifacts {
		row := artifactRow{ReleaseArtifact: a, Href: artifactHref(a.Name, a.Version)}
		cur, err := c.dml.Catalog.Artifact(ctx, a.Name, a.Version)
		switch {
		case err != nil:
			row.Problem = "cannot be read: " + err.Error()
		case cur.Digest != a.Digest:
			row.State, row.Problem = cur.State, "now names another digest: "+cur.Digest.String()
		case cur.RetiredAt != nil:
			row.State, row.Problem = cur.State, "retired"
		default:
			row.State = cur.State
		}
		pg.Artifacts = append(pg.Artifacts, row)
	}
	actions := lifecycle.AllowedActions(r)
	if v.can("release_approval") {
		for _, g := range gates {
			if !g.Waiting() {
				continue
			}
			if why := mayDecide(r, v.p, g); why != "" {
				pg.NotYours = append(pg.NotYours, fieldChange{What: g.Label, Now: why})
				continue
			}
			pg.Decisions = append(pg.Decisions, &decideForm{Gate: g, Digest: g.Digest, Shown: shownJSON(subjectOf(r, g.Gate))})
		}
	}
	if v.can("release_deployment_record") {
		if envs := deployableEnvs(r, v.p); len(envs) > 0 {
			f := &deployForm{Envs: envs, Env: envs[0], Status: string(lifecycle.DeploymentSucceeded), Statuses: deploymentStatuses}
			for _, a := range r.Artifacts {
				f.Digests = append(f.Digests, digestChoice{Digest: a.Digest, Label: a.Name + ":" + a.Version})
			}
			f.Digests = append(f.Digests, digestChoice{Digest: r.ManifestDigest, Label: "the sealed release manifest"})
			pg.Deploy = f
		}
	}
	if v.can("release_deployment_update") && slices.Contains(actions, "update-deployment") {
		for _, d := range r.Deployments {
			if next := nextStatuses(d.Status); len(next) > 0 && slices.Contains(v.p.Environments, d.Environment) {
				pg.Updates = append(pg.Updates, &updateForm{Deployment: d, Next: next})
			}
		}
	}
	if v.can("release_review") && slices.Contains(actions, "review") {
		pg.Review = &reviewForm{Outcomes: reviewOutcomes, Outcome: reviewOutcomes[0], ObjectivesMet: true}
		if r.State == lifecycle.ReleaseDeploying {
			pg.Review.Outcomes, pg.Review.Outcome = reviewOutcomes[2:], reviewOutcomes[2]
		}
	}
	if v.can("release_cancel") && slices.Contains(actions, "cancel") {
		pg.Cancel = &cancelForm{}
	}
	if v.can("audit_entries") {
		pg.AuditShown = true
		if pg.Audit, err = c.auditOf(v, r.Name); err != nil {
			return nil, err
		}
	}
	return pg, nil
}

func phases(r lifecycle.Release) []phase {
	cur := slices.Index(boardStates, r.State)
	out := make([]phase, len(boardStates))
	for i, st := range boardStates {
		out[i] = phase{State: st, Done: cur >= 0 && i < cur, Current: i == cur}
	}
	return out
}

// timelines lists each environment of the plan with its deploy gate and
// its deployments, oldest first.
func timelines(r lifecycle.Release, gates []gateInfo) []envTimeline {
	out := make([]envTimeline, 0, len(r.Plan.Environments))
	for _, env := range r.Plan.Environments {
		t := envTimeline{Env: env}
		if i := slices.IndexFunc(gates, func(g gateInfo) bool { return g.Gate == lifecycle.DeployGate(env) }); i >= 0 {
			t.Gate = gates[i]
		}
		for _, d := range r.Deployments {
			if d.Environment == env {
				t.Deployments = append(t.Deployments, d)
			}
		}
		sort.SliceStable(t.Deployments, func(i, j int) bool { return t.Deployments[i].StartedAt.Before(t.Deployments[j].StartedAt) })
		out = append(out, t)
	}
	return out
}

// auditOf reads the audit records of release name. The audit service
// streams the log from a position; the release's records are picked out
// on the way.
func (c *Console) auditOf(v *view, name string) ([]releaseAuditRow, error) {
	subject := "release:" + name
	var out []releaseAuditRow
	err := c.dml.Audit.AuditEntries(v.r.Context(), v.p, 0, 0, func(e audit.AuditEntry) error {
		var head struct {
			Subject string `json:"subject"`
		}
		if json.Unmarshal(e.Record, &head) != nil || head.Subject != subject {
			return nil
		}
		rec, err := auditlog.Decode(e.Record)
		if err != nil {
			return err
		}
		out = append(out, releaseAuditRow{Record: rec, Href: auditRecordHref(rec.Index), Details: string(rec.Details), Emergency: emergencyRecord(rec.Details)})
		return nil
	})
	return out, err
}

// mayDecide says why p may not decide gate g of r, or "" when it may:
// the separation of duties of lifecycle.Service.Decide (the release's
// creator, the publishers of its artifacts, and whoever edited the part
// the gate approves decide none of it), and a principal counts once.
// The domain decides again when the form is sent; this only keeps the
// inbox and the forms from offering what it would refuse.
func mayDecide(r lifecycle.Release, p access.Principal, g gateInfo) string {
	if !p.Has(access.RoleApprover) {
		return "deciding gates needs the approver role"
	}
	if err := lifecycle.SeparationOfDuties(r, p, g.Gate); err != nil {
		return err.Error()
	}
	if slices.Contains(g.Approvers, p.Name) {
		return "you approved it; it waits for other approvers"
	}
	return ""
}

// deployableEnvs are the environments p may record a deployment of r to
// now (lifecycle.Service.RecordDeployment): its own, authorised, and each
// earlier environment of the plan deployed successfully.
func deployableEnvs(r lifecycle.Release, p access.Principal) []string {
	if r.State != lifecycle.ReleaseDeploying || !p.Has(access.RoleDeployer) {
		return nil
	}
	var out []string
	for _, env := range r.Plan.Environments {
		if slices.Contains(p.Environments, env) && r.DeployAuthorized(env) {
			out = append(out, env)
		}
		if !succeededIn(r, env) {
			break
		}
	}
	return out
}

func succeededIn(r lifecycle.Release, env string) bool {
	return slices.ContainsFunc(r.Deployments, func(d lifecycle.Deployment) bool {
		return d.Environment == env && d.Status == lifecycle.DeploymentSucceeded
	})
}

// nextStatuses are where a deployment in status s may go.
func nextStatuses(s lifecycle.DeploymentStatus) []string {
	switch s {
	case lifecycle.DeploymentInProgress:
		return []string{string(lifecycle.DeploymentSucceeded), string(lifecycle.DeploymentFailed), string(lifecycle.DeploymentRolledBack)}
	case lifecycle.DeploymentSucceeded:
		return []string{string(lifecycle.DeploymentRolledBack)}
	}
	return nil
}

// What a gate approves, as the page showed it: the decision form carries
// it, so that when the gate has moved on (a stale digest) the page can say
// what changed between what the approver read and what is there now. It
// is only shown, never trusted: the domain decides on the digest alone.

type gateSubject struct {
	Plan      *lifecycle.Plan   `json:"plan,omitempty"`
	Quorums   map[string]int    `json:"quorums,omitempty"`
	Artifacts []string          `json:"artifacts,omitempty"`
	Review    *lifecycle.Review `json:"review,omitempty"`
}

func subjectOf(r lifecycle.Release, gate string) gateSubject {
	switch lifecycle.ApprovedPart(gate) {
	case lifecycle.PartPlan:
		p := r.Plan
		return gateSubject{Plan: &p, Quorums: r.Gates}
	case lifecycle.PartArtifacts:
		s := gateSubject{Artifacts: []string{}}
		for _, a := range r.Artifacts {
			s.Artifacts = append(s.Artifacts, a.Name+":"+a.Version+"@"+a.Digest.String())
		}
		return s
	case lifecycle.PartReview:
		return gateSubject{Review: r.Review}
	}
	return gateSubject{}
}

func shownJSON(s gateSubject) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// staleNotice says why a decision was not recorded: the gate expects
// another digest now.
type staleNotice struct {
	Gate      string
	Was, Now  digest.Digest
	ChangedBy string
	ChangedAt time.Time
	Changes   []fieldChange
}

type fieldChange struct {
	What, Was, Now string
}

func (c *Console) staleNotice(r lifecycle.Release, g gateInfo, was digest.Digest, shown string) *staleNotice {
	n := &staleNotice{Gate: g.Label, Was: was, Now: g.Digest}
	part := lifecycle.ApprovedPart(g.Gate)
	for _, e := range r.Edits {
		if e.Part == part && e.Digest == g.Digest {
			n.ChangedBy, n.ChangedAt = e.By, e.At
		}
	}
	var before gateSubject
	if json.Unmarshal([]byte(shown), &before) == nil {
		n.Changes = subjectChanges(before, subjectOf(r, g.Gate))
	}
	return n
}

// subjectChanges lists what differs between two states of a gate's
// subject, field by field.
func subjectChanges(a, b gateSubject) []fieldChange {
	var out []fieldChange
	add := func(what, was, now string) {
		if was != now {
			out = append(out, fieldChange{What: what, Was: was, Now: now})
		}
	}
	if a.Plan != nil || b.Plan != nil {
		pa, pb := orZero(a.Plan), orZero(b.Plan)
		add("Change reference", pa.ChangeRef, pb.ChangeRef)
		add("Title", pa.Title, pb.Title)
		add("Description", pa.Description, pb.Description)
		add("Environments", strings.Join(pa.Environments, ", "), strings.Join(pb.Environments, ", "))
		add("Window", windowText(pa.Window), windowText(pb.Window))
		add("Risk", pa.Risk, pb.Risk)
		add("Backout plan", pa.BackoutPlan, pb.BackoutPlan)
		gates := slices.Sorted(func(yield func(string) bool) {
			for g := range a.Quorums {
				if !yield(g) {
					return
				}
			}
			for g := range b.Quorums {
				if _, dup := a.Quorums[g]; !dup && !yield(g) {
					return
				}
			}
		})
		for _, g := range gates {
			add("Approvals needed: "+gateLabel(g), quorumText(a.Quorums, g), quorumText(b.Quorums, g))
		}
	}
	if a.Artifacts != nil || b.Artifacts != nil {
		for _, ref := range a.Artifacts {
			if !slices.Contains(b.Artifacts, ref) {
				add("Artifact removed", ref, "")
			}
		}
		for _, ref := range b.Artifacts {
			if !slices.Contains(a.Artifacts, ref) {
				add("Artifact added", "", ref)
			}
		}
	}
	if a.Review != nil || b.Review != nil {
		ra, rb := orZero(a.Review), orZero(b.Review)
		add("Outcome", ra.Outcome, rb.Outcome)
		add("Summary", ra.Summary, rb.Summary)
		add("Incidents", strings.Join(ra.Incidents, "; "), strings.Join(rb.Incidents, "; "))
		add("Objectives met", yesNo(ra.ObjectivesMet, ra.Outcome != ""), yesNo(rb.ObjectivesMet, rb.Outcome != ""))
		add("Filed by", ra.By, rb.By)
	}
	return out
}

func orZero[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func windowText(w *lifecycle.Window) string {
	if w == nil {
		return ""
	}
	return w.Start.UTC().Format("2006-01-02 15:04") + " – " + w.End.UTC().Format("2006-01-02 15:04 UTC")
}

func quorumText(q map[string]int, gate string) string {
	if n, ok := q[gate]; ok {
		return fmt.Sprint(n)
	}
	return ""
}

func yesNo(b, known bool) string {
	switch {
	case !known:
		return ""
	case b:
		return "yes"
	}
	return "no"
}

// Forms. A refused form shows the release page again with the refusal
// next to the form and what was typed kept, under the status the API
// would answer; anything else is an error page.

// refused shows the release page again after a refused form: fill sets
// the form's state on the fresh page.
func (c *Console) refused(v *view, name string, err error, fill func(pg *releasePage)) error {
	// A refusal is what the API answers with a 4xx (its error table);
	// anything else is an error page.
	status, _ := c.describe(err)
	if status < 400 || status >= 500 || status == http.StatusNotFound {
		return err
	}
	pg, perr := c.releasePage(v, name)
	if perr != nil {
		return perr
	}
	fill(pg)
	return v.render(status, "release", pg.R.Name, pg)
}

func (c *Console) decide(v *view) error {
	if err := v.require("release_approval"); err != nil {
		return err
	}
	name, f := v.r.PathValue("name"), v.r.PostForm
	req := lifecycle.ApprovalRequest{Gate: f.Get("gate"), Decision: lifecycle.Decision(f.Get("decision")),
		Digest: digest.Digest(f.Get("digest")), Comment: strings.TrimSpace(f.Get("comment"))}
	d, err := c.dml.Releases.DecideGate(v.r.Context(), v.p, name, req)
	r := d.Release
	if err != nil {
		return c.refused(v, name, err, func(pg *releasePage) {
			form := pg.decisionForm(req.Gate)
			if form == nil {
				pg.Problem = "Your decision on " + gateLabel(req.Gate) + " was not recorded: " + err.Error()
				return
			}
			form.Comment = req.Comment
			if errors.Is(err, lifecycle.ErrStaleApproval) {
				form.Stale = c.staleNotice(pg.R, form.Gate, req.Digest, f.Get("shown"))
				pg.Problem = "Your decision was not recorded: " + gateLabel(req.Gate) + " changed since you opened the page. What changed is shown below; decide again on what is there now."
				return
			}
			form.Error = err.Error()
		})
	}
	gates, err := c.gatesOf(v.r.Context(), r)
	if err != nil {
		return err
	}
	msg := "You rejected " + gateLabel(req.Gate) + "; the release is " + string(r.State) + " again."
	switch {
	case d.AlreadyCounted:
		// The same words as the API's and the CLI's.
		msg = "Nothing changed: " + d.Message() + "."
	case req.Decision == lifecycle.DecisionApprove:
		msg = "You approved " + gateLabel(req.Gate) + "."
		for _, g := range gates {
			if g.Gate == req.Gate {
				msg += fmt.Sprintf(" It has %d of %d approvals", g.Received, g.Required)
				if g.Authorized {
					msg += " and is authorised; the release is " + string(r.State) + "."
				} else {
					msg += "."
				}
			}
		}
	}
	return v.redirect(releaseHref(name)+"#"+gateAnchor(req.Gate), msg)
}

func (pg *releasePage) decisionForm(gate string) *decideForm {
	for _, f := range pg.Decisions {
		if f.Gate.Gate == gate {
			return f
		}
	}
	return nil
}

func (c *Console) recordDeployment(v *view) error {
	if err := v.require("release_deployment_record"); err != nil {
		return err
	}
	name, f := v.r.PathValue("name"), v.r.PostForm
	req := lifecycle.DeploymentRequest{Environment: f.Get("environment"), Target: strings.TrimSpace(f.Get("target")),
		Status: lifecycle.DeploymentStatus(f.Get("status")), Notes: f.Get("notes")}
	for _, d := range f["verified"] {
		req.VerifiedDigests = append(req.VerifiedDigests, digest.Digest(d))
	}
	r, dep, err := c.dml.Releases.RecordDeployment(v.r.Context(), v.p, name, req)
	if err != nil {
		return c.refused(v, name, err, func(pg *releasePage) {
			if pg.Deploy == nil {
				pg.Problem = "The deployment was not recorded: " + err.Error()
				return
			}
			d := pg.Deploy
			d.Env, d.Target, d.Status, d.Notes, d.Error = req.Environment, req.Target, string(req.Status), req.Notes, err.Error()
			for i := range d.Digests {
				d.Digests[i].Checked = slices.Contains(req.VerifiedDigests, d.Digests[i].Digest)
			}
		})
	}
	return v.redirect(releaseHref(name)+"#env-"+dep.Environment,
		fmt.Sprintf("Deployment to %s recorded (%s); the release is %s.", dep.Environment, strings.ReplaceAll(string(dep.Status), "_", " "), r.State))
}

func (c *Console) updateDeployment(v *view) error {
	if err := v.require("release_deployment_update"); err != nil {
		return err
	}
	name, id, f := v.r.PathValue("name"), v.r.PathValue("id"), v.r.PostForm
	upd := lifecycle.DeploymentUpdate{Status: lifecycle.DeploymentStatus(f.Get("status"))}
	if notes, ok := f["notes"]; ok && strings.TrimSpace(notes[0]) != "" {
		upd.Notes = &notes[0]
	}
	r, dep, err := c.dml.Releases.UpdateDeployment(v.r.Context(), v.p, name, id, upd)
	if err != nil {
		return c.refused(v, name, err, func(pg *releasePage) {
			for _, u := range pg.Updates {
				if u.Deployment.ID == id {
					u.Error = err.Error()
					return
				}
			}
			pg.Problem = "The deployment was not updated: " + err.Error()
		})
	}
	return v.redirect(releaseHref(name)+"#env-"+dep.Environment,
		fmt.Sprintf("Deployment to %s is %s; the release is %s.", dep.Environment, strings.ReplaceAll(string(dep.Status), "_", " "), r.State))
}

func (c *Console) fileReview(v *view) error {
	if err := v.require("release_review"); err != nil {
		return err
	}
	name, f := v.r.PathValue("name"), v.r.PostForm
	req := lifecycle.ReviewRequest{Outcome: f.Get("outcome"), Summary: strings.TrimSpace(f.Get("summary")), Incidents: []string{},
		ObjectivesMet: f.Get("objectivesMet") != ""}
	for line := range strings.Lines(f.Get("incidents")) {
		if s := strings.TrimSpace(line); s != "" {
			req.Incidents = append(req.Incidents, s)
		}
	}
	if _, err := c.dml.Releases.FileReview(v.r.Context(), v.p, name, req); err != nil {
		return c.refused(v, name, err, func(pg *releasePage) {
			if pg.Review == nil {
				pg.Problem = "The review was not filed: " + err.Error()
				return
			}
			pg.Review.Outcome, pg.Review.Summary, pg.Review.Incidents = req.Outcome, req.Summary, f.Get("incidents")
			pg.Review.ObjectivesMet, pg.Review.Error = req.ObjectivesMet, err.Error()
		})
	}
	return v.redirect(releaseHref(name)+"#review", "Review filed; the close gate now decides on it.")
}

func (c *Console) cancelRelease(v *view) error {
	if err := v.require("release_cancel"); err != nil {
		return err
	}
	name, reason := v.r.PathValue("name"), strings.TrimSpace(v.r.PostFormValue("reason"))
	if _, err := c.dml.Releases.CancelRelease(v.r.Context(), v.p, name, reason); err != nil {
		return c.refused(v, name, err, func(pg *releasePage) {
			if pg.Cancel == nil {
				pg.Problem = "The release was not cancelled: " + err.Error()
				return
			}
			pg.Cancel.Reason, pg.Cancel.Error = reason, err.Error()
		})
	}
	return v.redirect(releaseHref(name), "Release "+name+" cancelled.")
}
