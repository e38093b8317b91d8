package api

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// Audit actions of policy and allowlist changes.
const (
	auditPolicyApply     = "policy.apply"
	auditPolicyDelete    = "policy.delete"
	auditAllowlistAdd    = "allowlist.add"
	auditAllowlistRemove = "allowlist.remove"
)

// Who may do what with policies (docs/policy-store.md):
//
//   - reading: any logged-in user reads policies that are not scoped to
//     one project; a project's policies are read by those who may see the
//     project (rbac.ActionReadProject);
//   - changing: system administrators change every policy; the project's
//     admins (rbac.ActionManageSettings) change policies scoped to exactly
//     that one project (spec.scope.projects: [P] and no other selector),
//     before and after the change. Such a policy applies in addition to the
//     runtime policies, so it can only refuse more of the project's images;
//   - the project's CVE allowlist (the allowlist of policy "project-P")
//     takes rbac.ActionManageAllowlist.

func (h *handler) policyRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/policies", h.wrap(h.listPolicies))
	mux.Handle("GET /api/v1/policies/{policy}", h.wrap(h.getPolicy))
	mux.Handle("GET /api/v1/policies/{policy}/history", h.wrap(h.policyHistory))
	mux.Handle("PUT /api/v1/policies/{policy}", h.wrap(h.putPolicy))
	mux.Handle("DELETE /api/v1/policies/{policy}", h.wrap(h.deletePolicy))
	mux.Handle("GET /api/v1/projects/{name}/allowlist", h.wrap(h.listAllowlist))
	mux.Handle("POST /api/v1/projects/{name}/allowlist", h.wrap(h.addAllowlist))
	mux.Handle("DELETE /api/v1/projects/{name}/allowlist/{id}", h.wrap(h.removeAllowlist))
}

// PolicyDocument is a stored policy in API answers.
type PolicyDocument struct {
	Name string `json:"name"`
	// Project is the one project the policy is scoped to, "" otherwise.
	Project  string `json:"project,omitempty"`
	Revision int64  `json:"revision"`
	// Document is the policy as YAML (left out of lists).
	Document  string    `json:"document,omitempty"`
	Deleted   bool      `json:"deleted,omitempty"`
	UpdatedBy string    `json:"updatedBy,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func toPolicyDocument(d store.PolicyDocument, withDoc bool) PolicyDocument {
	out := PolicyDocument{Name: d.Name, Project: d.Project, Revision: d.Revision, Deleted: d.Deleted,
		UpdatedBy: d.UpdatedBy, UpdatedAt: d.UpdatedAt}
	if withDoc {
		out.Document = d.Document
	}
	return out
}

// PutPolicyRequest is the body of PUT /api/v1/policies/{name}.
type PutPolicyRequest struct {
	// Document is one policy document in YAML whose metadata.name is the
	// {name} of the path.
	Document string `json:"document"`
}

// policyProject is the one project p is scoped to, or "" when its scope is
// anything else.
func policyProject(p *policy.Policy) string {
	sc := p.Spec.Scope
	if len(sc.Projects) == 1 && len(sc.Environments)+len(sc.Namespaces)+len(sc.Repositories) == 0 {
		return sc.Projects[0]
	}
	return ""
}

// mayReadPolicy reports whether p may read a policy of project ("" for
// one not scoped to a single project).
func (h *handler) mayReadPolicy(r *http.Request, p auth.Principal, project string) (bool, error) {
	if p.Admin || project == "" {
		return true, nil
	}
	may, err := h.opts.Auth.ProjectPermissions(r.Context(), p, project)
	return may.Has(rbac.ActionReadProject), err
}

// requirePolicyChange refuses p unless it may change a policy of project
// ("" for a policy not scoped to a single project), auditing a refusal.
func (h *handler) requirePolicyChange(r *http.Request, p auth.Principal, project, action, resource string) error {
	if p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	if p.Admin {
		return nil
	}
	var err error
	if project == "" {
		err = apperr.Errorf(apperr.EDENIED, "only system administrators may change policies not scoped to exactly one project")
	} else {
		may, perr := h.opts.Auth.ProjectPermissions(r.Context(), p, project)
		if perr != nil {
			return perr
		}
		if may.Has(rbac.ActionManageSettings) {
			return nil
		}
		err = apperr.Errorf(apperr.EDENIED, "changing the policies of project %q requires %s", project, roleNeeded(rbac.ActionManageSettings))
	}
	h.audit(r, p, audit.Event{Action: action, Resource: resource, Project: project, Outcome: audit.Denied, Reason: apperr.Message(err)})
	return err
}

func (h *handler) listPolicies(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	all, err := h.opts.Policies.Policies(r.Context(), pg)
	if err != nil {
		return err
	}
	rev, err := h.opts.Policies.PolicyRevision(r.Context())
	if err != nil {
		return err
	}
	out := []PolicyDocument{}
	for _, d := range all {
		ok, err := h.mayReadPolicy(r, p, d.Project)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, toPolicyDocument(d, false))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"revision": rev, "policies": out})
	return nil
}

// readablePolicy returns the {policy} of the request if p may read it;
// ENOTFOUND otherwise.
func (h *handler) readablePolicy(r *http.Request, p auth.Principal) (*store.PolicyDocument, error) {
	if p.Kind == auth.KindAnonymous {
		return nil, apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	name := r.PathValue("policy")
	d, err := h.opts.Policies.Policy(r.Context(), name)
	if err != nil {
		return nil, err
	}
	ok, err := h.mayReadPolicy(r, p, d.Project)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "policy %q not found", name)
	}
	return d, nil
}

func (h *handler) getPolicy(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	d, err := h.readablePolicy(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toPolicyDocument(*d, true))
	return nil
}

func (h *handler) policyHistory(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	name := r.PathValue("policy")
	hist, err := h.opts.Policies.PolicyHistory(r.Context(), name)
	if err != nil {
		return err
	}
	if ok, err := h.mayReadPolicy(r, p, hist[0].Project); err != nil {
		return err
	} else if !ok {
		return apperr.Errorf(apperr.ENOTFOUND, "policy %q not found", name)
	}
	out := make([]PolicyDocument, len(hist))
	for i, d := range hist {
		out[i] = toPolicyDocument(d, true)
	}
	writeJSON(w, http.StatusOK, map[string]any{"history": out})
	return nil
}

// ValidatePolicy parses doc as the single policy named name and compiles
// it (Rego included). Errors are EINVALID and name the line and field of
// each problem (policy.ParseError), one per line.
func ValidatePolicy(name, doc string) (*policy.Policy, error) {
	ps, err := policy.Parse(name, []byte(doc))
	if err != nil {
		var lines []string
		for _, e := range unjoin(err) {
			lines = append(lines, e.Error())
		}
		return nil, apperr.Errorf(apperr.EINVALID, "invalid policy:\n%s", strings.Join(lines, "\n"))
	}
	if len(ps) != 1 {
		return nil, apperr.Errorf(apperr.EINVALID, "%s: holds %d policy documents; a policy is saved one document at a time", name, len(ps))
	}
	if got := ps[0].Metadata.Name; got != name {
		return nil, apperr.Errorf(apperr.EINVALID, "%s: metadata.name is %q, not %q as in the request path", name, got, name)
	}
	if _, err := policy.Compile(ps, policy.Config{}); err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "invalid policy: %v", err)
	}
	return ps[0], nil
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (h *handler) putPolicy(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name := r.PathValue("policy")
	resource := "policy:" + name
	if p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	var req PutPolicyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	pol, err := ValidatePolicy(name, req.Document)
	if err != nil {
		return err
	}
	project := policyProject(pol)
	if err := h.requirePolicyChange(r, p, project, auditPolicyApply, resource); err != nil {
		return err
	}
	old, err := h.opts.Policies.Policy(r.Context(), name)
	switch {
	case err == nil:
		if old.Project != project {
			if err := h.requirePolicyChange(r, p, old.Project, auditPolicyApply, resource); err != nil {
				return err
			}
		}
		if old.Document == req.Document {
			writeJSON(w, http.StatusOK, toPolicyDocument(*old, true))
			return nil
		}
	case !apperr.Is(err, apperr.ENOTFOUND):
		return err
	}
	d := &store.PolicyDocument{Name: name, Project: project, Document: req.Document, UpdatedBy: p.Name}
	if err := h.opts.Policies.PutPolicy(r.Context(), d); err != nil {
		return err
	}
	reqLogger(r, h).Info("policy applied", "policy", name, "revision", d.Revision, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditPolicyApply, Resource: resource, Project: project,
		Details: map[string]string{"revision": strconv.FormatInt(d.Revision, 10)}})
	st := http.StatusOK
	if old == nil {
		st = http.StatusCreated
	}
	writeJSON(w, st, toPolicyDocument(*d, true))
	return nil
}

func (h *handler) deletePolicy(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	d, err := h.readablePolicy(r, p)
	if err != nil {
		return err
	}
	resource := "policy:" + d.Name
	if err := h.requirePolicyChange(r, p, d.Project, auditPolicyDelete, resource); err != nil {
		return err
	}
	rev, err := h.opts.Policies.DeletePolicy(r.Context(), d.Name, p.Name)
	if err != nil {
		return err
	}
	reqLogger(r, h).Info("policy deleted", "policy", d.Name, "revision", rev, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditPolicyDelete, Resource: resource, Project: d.Project,
		Details: map[string]string{"revision": strconv.FormatInt(rev, 10)}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// AllowlistEntry is an entry of a project's CVE allowlist in API requests
// and answers.
type AllowlistEntry struct {
	ID         string `json:"id"`
	Package    string `json:"package,omitempty"`
	Repository string `json:"repository,omitempty"`
	// Expires is, in requests, an RFC 3339 time, a date (2026-01-31), or
	// a duration from now on the server's clock: "30d" (days) or a Go
	// duration ("12h"); "" never expires. Answers carry RFC 3339.
	Expires string `json:"expires,omitempty"`
	Reason  string `json:"reason,omitempty"`
	AddedBy string `json:"addedBy,omitempty"`
	// Expired is true in answers for an entry that no longer applies.
	Expired bool `json:"expired,omitempty"`
}

// Allowlist is a project's CVE allowlist.
type Allowlist struct {
	Project string `json:"project"`
	// Policy is the project settings policy holding the entries.
	Policy   string           `json:"policy"`
	Revision int64            `json:"revision,omitempty"`
	Entries  []AllowlistEntry `json:"entries"`
}

var daysRE = regexp.MustCompile(`^([0-9]{1,5})d$`)

// parseExpires reads AllowlistEntry.Expires relative to now.
func parseExpires(s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	var t time.Time
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		t = now.AddDate(0, 0, n)
	} else if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return nil, apperr.Errorf(apperr.EINVALID, "expires: duration %q is negative", s)
		}
		t = now.Add(d)
	} else if t, err = policy.ParseExpiry(s); err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "expires: %q is not a duration (30d, 12h), a date (2026-01-31) or an RFC 3339 time", s)
	}
	t = t.UTC().Truncate(time.Second)
	return &t, nil
}

// projectPolicy returns the project's settings policy, parsed, with its
// stored revision; a project without one gets the default settings policy
// (revision 0).
func (h *handler) projectPolicy(r *http.Request, project string) (*policy.Policy, int64, error) {
	name := policy.ProjectPolicyName(project)
	d, err := h.opts.Policies.Policy(r.Context(), name)
	if apperr.Is(err, apperr.ENOTFOUND) {
		pol, err := policy.ProjectPolicy(policy.DefaultProjectSettings(project))
		return pol, 0, err
	}
	if err != nil {
		return nil, 0, err
	}
	ps, err := policy.Parse(name, []byte(d.Document))
	if err != nil || len(ps) != 1 {
		return nil, 0, apperr.Errorf(apperr.EINTERNAL, "stored policy %q does not parse: %v", name, err)
	}
	return ps[0], d.Revision, nil
}

func (h *handler) allowlistOf(pol *policy.Policy, project string, rev int64) Allowlist {
	out := Allowlist{Project: project, Policy: pol.Metadata.Name, Revision: rev, Entries: []AllowlistEntry{}}
	if v := pol.Spec.Vulnerabilities; v != nil {
		now := h.opts.Clock()
		for _, e := range v.Allowlist {
			a := AllowlistEntry{ID: e.ID, Package: e.Package, Repository: e.Repository, Reason: e.Reason, AddedBy: e.AddedBy}
			if e.Expires != nil {
				a.Expires = e.Expires.UTC().Format(time.RFC3339)
				a.Expired = !now.Before(*e.Expires)
			}
			out.Entries = append(out.Entries, a)
		}
	}
	return out
}

func (h *handler) listAllowlist(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	pol, rev, err := h.projectPolicy(r, pr.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.allowlistOf(pol, pr.Name, rev))
	return nil
}

// editProjectPolicy applies edit to the project's settings policy and
// stores the result on condition that nobody changed it meanwhile (edit
// runs again on a fresh copy if somebody did, up to 3 times). It returns
// the policy stored and its revision.
func (h *handler) editProjectPolicy(r *http.Request, p auth.Principal, project string, edit func(*policy.Policy) error) (*policy.Policy, int64, error) {
	for attempt := 0; ; attempt++ {
		pol, base, err := h.projectPolicy(r, project)
		if err != nil {
			return nil, 0, err
		}
		if err := edit(pol); err != nil {
			return nil, 0, err
		}
		// Scan on push is the project's scan setting (its one source);
		// settings policies written before carried it as an annotation.
		delete(pol.Metadata.Annotations, policy.AnnotationScanOnPush)
		doc, err := policy.Marshal(pol)
		if err != nil {
			return nil, 0, apperr.Wrap(err, apperr.EINTERNAL, "encoding the project policy")
		}
		if _, err := ValidatePolicy(pol.Metadata.Name, string(doc)); err != nil {
			return nil, 0, err
		}
		d := &store.PolicyDocument{Name: pol.Metadata.Name, Project: project, Document: string(doc), UpdatedBy: p.Name}
		err = h.opts.Policies.ReplacePolicy(r.Context(), d, base)
		if err == nil {
			return pol, d.Revision, nil
		}
		if !apperr.Is(err, apperr.ECONFLICT) || attempt == 2 {
			return nil, 0, err
		}
	}
}

func (h *handler) addAllowlist(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	var req AllowlistEntry
	if err := decode(r, &req); err != nil {
		return err
	}
	resource := "project:" + pr.Name + "/allowlist/" + req.ID
	if err := h.require(r, p, pr, rbac.ActionManageAllowlist, auditAllowlistAdd, resource); err != nil {
		return err
	}
	if req.ID == "" {
		return apperr.Errorf(apperr.EINVALID, "id: an advisory id (CVE-2019-14697, GHSA-...) is required")
	}
	exp, err := parseExpires(req.Expires, h.opts.Clock())
	if err != nil {
		return err
	}
	e := policy.AllowlistEntry{ID: req.ID, Package: req.Package, Repository: req.Repository, Expires: exp,
		Reason: req.Reason, AddedBy: p.Name}
	pol, rev, err := h.editProjectPolicy(r, p, pr.Name, func(pol *policy.Policy) error {
		if pol.Spec.Vulnerabilities == nil {
			pol.Spec.Vulnerabilities = &policy.VulnerabilitiesRule{}
		}
		v := pol.Spec.Vulnerabilities
		// An entry for the same advisory, package and repository is replaced.
		v.Allowlist = deleteEntries(v.Allowlist, func(o policy.AllowlistEntry) bool {
			return strings.EqualFold(o.ID, e.ID) && o.Package == e.Package && o.Repository == e.Repository
		})
		v.Allowlist = append(v.Allowlist, e)
		return nil
	})
	if err != nil {
		return err
	}
	details := map[string]string{"id": e.ID, "revision": strconv.FormatInt(rev, 10), "reason": e.Reason}
	if exp != nil {
		details["expires"] = exp.Format(time.RFC3339)
	}
	if e.Package != "" {
		details["package"] = e.Package
	}
	if e.Repository != "" {
		details["repository"] = e.Repository
	}
	reqLogger(r, h).Info("allowlist entry added", "project", pr.Name, "id", e.ID, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditAllowlistAdd, Resource: resource, Project: pr.Name, Details: details})
	writeJSON(w, http.StatusCreated, h.allowlistOf(pol, pr.Name, rev))
	return nil
}

func (h *handler) removeAllowlist(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	resource := "project:" + pr.Name + "/allowlist/" + id
	if err := h.require(r, p, pr, rbac.ActionManageAllowlist, auditAllowlistRemove, resource); err != nil {
		return err
	}
	n := 0
	pol, rev, err := h.editProjectPolicy(r, p, pr.Name, func(pol *policy.Policy) error {
		v := pol.Spec.Vulnerabilities
		n = 0
		if v != nil {
			n = len(v.Allowlist)
			v.Allowlist = deleteEntries(v.Allowlist, func(o policy.AllowlistEntry) bool { return strings.EqualFold(o.ID, id) })
			n -= len(v.Allowlist)
		}
		if n == 0 {
			return apperr.Errorf(apperr.ENOTFOUND, "project %q has no allowlist entry %q", pr.Name, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	reqLogger(r, h).Info("allowlist entry removed", "project", pr.Name, "id", id, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditAllowlistRemove, Resource: resource, Project: pr.Name,
		Details: map[string]string{"id": id, "revision": strconv.FormatInt(rev, 10), "entries": strconv.Itoa(n)}})
	writeJSON(w, http.StatusOK, h.allowlistOf(pol, pr.Name, rev))
	return nil
}

// deleteEntries returns list without the entries drop matches.
func deleteEntries(list []policy.AllowlistEntry, drop func(policy.AllowlistEntry) bool) []policy.AllowlistEntry {
	out := list[:0:0]
	for _, e := range list {
		if !drop(e) {
			out = append(out, e)
		}
	}
	return out
}
