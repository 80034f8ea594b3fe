package events

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/dmlproject/dml/releases/audit"
	"github.com/dmlproject/dml/releases/catalog"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// Public event types that differ from the audit action they come from.
// Every other action is published under its own name (artifact.pushed,
// trust.key.added, token.issued, webhook.created…), so nothing audited is
// missing from the stream.
const (
	TypeArtifactAdmitted    = "artifact.admitted"
	TypeArtifactRejected    = "artifact.rejected"
	TypeArtifactQuarantined = "artifact.quarantined"
	TypeGateOpened          = "gate.opened"
	TypeGateApproved        = "gate.approved"
	TypeGateRejected        = "gate.rejected"
	TypeGatePassed          = "gate.passed"
	TypeReleaseSealed       = lifecycle.ActionReleaseSealed
	TypeReleaseClosed       = lifecycle.ActionReleaseClosed
	TypeDeploymentRecorded  = "deployment.recorded"
	TypeDeploymentUpdated   = "deployment.updated"
	TypeReviewFiled         = "review.filed"
)

// derived is one public event an audit event gives: its type and the
// fields its data adds to or overrides in the audit details.
type derived struct {
	typ   string
	extra map[string]any
}

// mappers is the one table from audit actions to public events. An action
// not in it gives one event of the same type with the details as data.
var mappers = map[string]func(details map[string]any) []derived{
	catalog.ActionAdmissionDecided:    admissionEvents,
	lifecycle.ActionReleaseCreated:    releaseCreatedEvents,
	lifecycle.ActionReleaseApproval:   approvalEvents,
	lifecycle.ActionReleaseDeployment: deploymentEvents,
	lifecycle.ActionReleaseReview:     reviewEvents,
}

// admission.decided: the state decided names the event.
func admissionEvents(d map[string]any) []derived {
	switch str(d["state"]) {
	case string(catalog.StateAdmitted):
		return []derived{{typ: TypeArtifactAdmitted}}
	case string(catalog.StateRejected):
		return []derived{{typ: TypeArtifactRejected}}
	}
	return []derived{{typ: TypeArtifactQuarantined}}
}

// release.created opens the plan gate.
func releaseCreatedEvents(map[string]any) []derived {
	return []derived{{typ: lifecycle.ActionReleaseCreated}, gateOpened(lifecycle.GatePlan)}
}

// release.approval: a rejection is gate.rejected. An approval is
// gate.approved; one that completes the quorum is also gate.passed, then
// release.sealed (the build gate) or release.closed (the close gate), then
// gate.opened for every gate it opened.
func approvalEvents(d map[string]any) []derived {
	gate := str(d["gate"])
	if str(d["decision"]) == string(lifecycle.DecisionReject) {
		return []derived{{typ: TypeGateRejected}}
	}
	out := []derived{{typ: TypeGateApproved}}
	if d["authorized"] != true {
		return out
	}
	out = append(out, derived{typ: TypeGatePassed})
	switch {
	case str(d["sealed"]) != "":
		out = append(out, derived{typ: TypeReleaseSealed, extra: map[string]any{"manifestDigest": d["sealed"]}})
	case str(d["to"]) == string(lifecycle.ReleaseClosed):
		out = append(out, derived{typ: TypeReleaseClosed})
	}
	opened := strs(d["opened"])
	if _, recorded := d["opened"]; !recorded && gate == lifecycle.GatePlan {
		// Approvals recorded before "opened" was: passing the plan
		// gate opens the build gate. (Which deploy gates a sealing
		// opened those records do not say.)
		opened = []string{lifecycle.GateBuild}
	}
	for _, g := range opened {
		out = append(out, gateOpened(g))
	}
	return out
}

// release.deployment: a new deployment carries its target; an update of
// one does not.
func deploymentEvents(d map[string]any) []derived {
	if _, ok := d["target"]; ok {
		return []derived{{typ: TypeDeploymentRecorded}}
	}
	return []derived{{typ: TypeDeploymentUpdated}}
}

// release.review: filing (or re-filing) the review opens the close gate.
func reviewEvents(map[string]any) []derived {
	return []derived{{typ: TypeReviewFiled}, gateOpened(lifecycle.GateClose)}
}

func gateOpened(gate string) derived {
	return derived{typ: TypeGateOpened, extra: map[string]any{"gate": gate}}
}

// Public maps one audit event to the public events it gives, in order;
// the i-th has the ID "SEQ.i". Their data is the audit details (an
// object's fields, or under "details" when they are not an object) with
// what a receiver needs to act without another request: the artifact's
// name and version, or the release's name, parsed from the subject.
func Public(e audit.Event) []Event {
	details := map[string]any{}
	var raw any
	if len(e.Details) > 0 {
		if err := json.Unmarshal(e.Details, &details); err != nil || details == nil {
			details = map[string]any{}
			_ = json.Unmarshal(e.Details, &raw)
		}
	}
	list := []derived{{typ: e.Action}}
	if m := mappers[e.Action]; m != nil {
		list = m(details)
	}
	base := maps.Clone(details)
	if raw != nil {
		base["details"] = raw
	}
	var names []string
	switch name, version, kind := subjectOf(e); kind {
	case "release":
		base["release"] = name
		names = []string{name}
	case "artifact":
		base["name"], base["version"] = name, version
		names = []string{name}
	case "repository":
		base["repository"] = name
		names = []string{name}
	}
	out := make([]Event, len(list))
	for i, dv := range list {
		data := maps.Clone(base)
		maps.Copy(data, dv.extra)
		b, err := json.Marshal(data)
		if err != nil {
			b = []byte("{}") // values decoded from JSON always encode
		}
		pos := Position{Seq: e.Seq, N: i}
		out[i] = Event{
			ID: pos.String(), Type: dv.typ, Time: e.Time, Subject: e.Subject,
			Principal: Principal{Name: e.Actor.Name, TokenID: e.Actor.TokenID, Issuer: e.Actor.Issuer, Subject: e.Actor.Subject},
			Data:      b, Position: pos, Names: names, Environments: environmentsOf(data),
		}
	}
	return out
}

// subjectOf parses a subject: "release:NAME" (a release), "NAME:VERSION"
// (an artifact version, for the catalogue's actions), "REPO@DIGEST" or
// "REPO:TAG" (the registry's).
func subjectOf(e audit.Event) (name, version, kind string) {
	s := e.Subject
	if n, ok := strings.CutPrefix(s, "release:"); ok && strings.HasPrefix(e.Action, "release.") {
		return n, "", "release"
	}
	switch {
	case strings.HasPrefix(e.Action, "artifact."), strings.HasPrefix(e.Action, "admission."), strings.HasPrefix(e.Action, "evidence."):
		if i := strings.LastIndexByte(s, ':'); i > 0 {
			return s[:i], s[i+1:], "artifact"
		}
	case strings.HasPrefix(e.Action, "oci."):
		if i := strings.IndexByte(s, '@'); i > 0 {
			return s[:i], "", "repository"
		}
		if i := strings.LastIndexByte(s, ':'); i > 0 {
			return s[:i], "", "repository"
		}
	}
	return "", "", ""
}

// environmentsOf lists the environments an event's data names: a
// deployment's environment, a deploy gate's.
func environmentsOf(data map[string]any) []string {
	var out []string
	if env := str(data["environment"]); env != "" {
		out = append(out, env)
	}
	if env, ok := strings.CutPrefix(str(data["gate"]), "deploy:"); ok && env != "" && !slices.Contains(out, env) {
		out = append(out, env)
	}
	return out
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

func strs(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s := str(x); s != "" {
			out = append(out, s)
		}
	}
	return out
}
