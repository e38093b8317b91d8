// Package registryaudit records what happens in the registry in the audit
// trail: it implements registry.Events over an audit.Recorder.
package registryaudit

import (
	"context"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/store"
)

// Audit actions of the registry.
const (
	ActionPush   = "artifact.push"
	ActionPull   = "artifact.pull"
	ActionDelete = "artifact.delete"
)

// Events turns registry notices into audit events: a manifest push, pull or
// delete (tag or manifest) is one event with outcome success; a refused
// request is one event with outcome denied (the guard said no) or failure.
// Resources are "repository:<name>@<digest>", or "repository:<name>" when
// no manifest is known. Client IP and user agent come from the request
// context (audit.WithClient).
type Events struct {
	rec audit.Recorder
}

// New returns Events recording through rec.
func New(rec audit.Recorder) *Events { return &Events{rec: rec} }

// ManifestPushed records ActionPush.
func (ev *Events) ManifestPushed(ctx context.Context, p auth.Principal, m *store.Manifest, tags []string) {
	d := manifestDetails(m)
	if len(tags) > 0 {
		d["tags"] = strings.Join(tags, ",")
	}
	ev.rec.Record(ctx, event(p, ActionPush, m.Repository, m.Digest, audit.Success, "", d))
}

// ManifestPulled records ActionPull.
func (ev *Events) ManifestPulled(ctx context.Context, p auth.Principal, m *store.Manifest) {
	ev.rec.Record(ctx, event(p, ActionPull, m.Repository, m.Digest, audit.Success, "", manifestDetails(m)))
}

// ManifestDeleted records ActionDelete; a tag deletion names the tag.
func (ev *Events) ManifestDeleted(ctx context.Context, p auth.Principal, repo string, d digest.Digest, tag string) {
	var details map[string]string
	if tag != "" {
		details = map[string]string{"tag": tag}
	}
	ev.rec.Record(ctx, event(p, ActionDelete, repo, d, audit.Success, "", details))
}

// Refused records the push, delete or pull (the first of those in actions)
// as denied or failed, with the error's caller-safe message as the reason.
func (ev *Events) Refused(ctx context.Context, p auth.Principal, repo string, actions []string, err error) {
	action := ActionPull
	for _, a := range actions {
		switch {
		case a == auth.ActionPush || a == auth.ActionAll:
			action = ActionPush
		case a == auth.ActionDelete && action != ActionPush:
			action = ActionDelete
		}
	}
	outcome := audit.Failure
	if apperr.Is(err, apperr.EDENIED) || (apperr.Is(err, apperr.EUNAUTHORIZED) && apperr.Detail(err) == "DENIED") {
		outcome = audit.Denied
	}
	details := map[string]string{"actions": strings.Join(actions, ",")}
	if code := apperr.Code(err); code != "" {
		details["code"] = code
	}
	ev.rec.Record(ctx, event(p, action, repo, "", outcome, apperr.Message(err), details))
}

func manifestDetails(m *store.Manifest) map[string]string {
	d := map[string]string{"mediaType": m.MediaType, "size": strconv.FormatInt(m.Size, 10)}
	if m.ArtifactType != "" {
		d["artifactType"] = m.ArtifactType
	}
	if m.Subject != "" {
		d["subject"] = m.Subject.String()
	}
	return d
}

// event builds an event of p doing action on repo (and manifest d).
func event(p auth.Principal, action, repo string, d digest.Digest, outcome audit.Outcome, reason string, details map[string]string) audit.Event {
	resource := "repository:" + repo
	if d != "" {
		resource += "@" + d.String()
	}
	project, _, _ := strings.Cut(repo, "/")
	return audit.Event{
		ActorKind: actorKind(p), Actor: p.Name, Action: action, Resource: resource, Project: project,
		Outcome: outcome, Reason: reason, Details: details,
	}
}

// actorKind is the audit actor kind of p.
func actorKind(p auth.Principal) string {
	if p.Kind == "" {
		return audit.ActorAnonymous
	}
	return string(p.Kind)
}
