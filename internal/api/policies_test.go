package api_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/rbac"
)

const basePolicy = `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: base
spec:
  tags:
    deny: [latest]
`

const projectPPolicy = `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: project-p
spec:
  scope:
    projects: [p]
  vulnerabilities:
    maxSeverity: high
`

func TestPoliciesAPI(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()

	d, err := e.admin.ApplyPolicy(ctx, "base", basePolicy)
	if err != nil {
		t.Fatal(err)
	}
	if d.Revision != 1 || d.Project != "" || d.UpdatedBy != "admin" {
		t.Fatalf("applied base = %+v", d)
	}
	// The same document again is no new revision.
	if d, err := e.admin.ApplyPolicy(ctx, "base", basePolicy); err != nil || d.Revision != 1 {
		t.Fatalf("re-applying the same document: %+v, %v", d, err)
	}
	changed := strings.Replace(basePolicy, "[latest]", "[latest, dev]", 1)
	if d, err := e.admin.ApplyPolicy(ctx, "base", changed); err != nil || d.Revision != 2 {
		t.Fatalf("applying a change: %+v, %v", d, err)
	}
	got, err := e.admin.Policy(ctx, "base")
	if err != nil || got.Document != changed {
		t.Fatalf("Policy(base) = %+v, %v", got, err)
	}
	hist, err := e.admin.PolicyHistory(ctx, "base")
	if err != nil || len(hist) != 2 || hist[0].Revision != 2 || hist[1].Document != basePolicy {
		t.Fatalf("history = %+v, %v", hist, err)
	}

	// Validation on save: line and field, 400 (EINVALID).
	for _, bad := range []struct {
		name, doc, mention string
	}{
		{"unknown field", strings.Replace(basePolicy, "deny:", "dny:", 1), `base:7: spec.tags: unknown field "dny"`},
		{"bad severity", strings.Replace(projectPPolicy, "high", "severe", 1), "base:9: spec.vulnerabilities.maxSeverity"},
		{"name differs", strings.Replace(projectPPolicy, "project-p", "other", 1), `metadata.name is "other"`},
		{"two documents", basePolicy + "---\n" + strings.Replace(basePolicy, "name: base", "name: other", 1), "2 policy documents"},
		{"bad rego", strings.Replace(basePolicy, "  tags:\n    deny: [latest]\n",
			"  rego:\n    modules:\n    - name: x.rego\n      source: |\n        package customs\n        deny contains msg if {\n", 1), "x.rego"},
	} {
		doc := strings.Replace(bad.doc, "name: project-p", "name: base", 1)
		if bad.name == "name differs" {
			doc = bad.doc
		}
		_, err := e.admin.ApplyPolicy(ctx, "base", doc)
		if apperr.Code(err) != apperr.EINVALID || !strings.Contains(apperr.Message(err), bad.mention) {
			t.Errorf("%s: %v, want EINVALID mentioning %q", bad.name, err, bad.mention)
		}
	}
	if d, _ := e.admin.Policy(ctx, "base"); d.Revision != 2 {
		t.Fatalf("a refused document changed the policy: revision %d", d.Revision)
	}

	// Who may change what.
	padmin := e.user(t, "padmin", "padmin-pw-1", rbac.RoleProjectAdmin)
	dev := e.user(t, "dev", "dev-pw-12", rbac.RoleDeveloper)
	outsider := e.user(t, "outsider", "outsider-pw-1", rbac.Role(0))
	_, err = padmin.ApplyPolicy(ctx, "base", basePolicy)
	wantCode(t, "project admin changing a global policy", err, apperr.EDENIED)
	_, err = dev.ApplyPolicy(ctx, "project-p", projectPPolicy)
	wantCode(t, "developer changing a project policy", err, apperr.EDENIED)
	if d, err := padmin.ApplyPolicy(ctx, "project-p", projectPPolicy); err != nil || d.Project != "p" {
		t.Fatalf("project admin applying p's policy: %+v, %v", d, err)
	}
	_, err = padmin.ApplyPolicy(ctx, "project-p", strings.Replace(projectPPolicy, "[p]", "[p, q]", 1))
	wantCode(t, "project admin widening the scope", err, apperr.EDENIED)
	if denied := e.rec.Events(func(ev audit.Event) bool {
		return ev.Action == "policy.apply" && ev.Outcome == audit.Denied
	}); len(denied) != 3 {
		t.Errorf("denied policy.apply events = %d, want 3", len(denied))
	}

	// Reading: global policies to everyone logged in, p's to p's members.
	list, rev, err := outsider.Policies(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "base" || rev != 3 {
		t.Fatalf("outsider's list = %+v, revision %d, %v", list, rev, err)
	}
	_, err = outsider.Policy(ctx, "project-p")
	wantCode(t, "outsider reading p's policy", err, apperr.ENOTFOUND)
	if list, _, err := dev.Policies(ctx); err != nil || len(list) != 2 {
		t.Fatalf("developer's list = %+v, %v", list, err)
	}
	_, _, err = e.as("", "").Policies(ctx)
	wantCode(t, "anonymous list", err, apperr.EUNAUTHORIZED)

	// Delete.
	wantCode(t, "developer deleting", dev.DeletePolicy(ctx, "project-p"), apperr.EDENIED)
	if err := padmin.DeletePolicy(ctx, "project-p"); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.Policy(ctx, "project-p")
	wantCode(t, "deleted policy", err, apperr.ENOTFOUND)
	if len(e.rec.find("policy.delete")) != 2 { // one refusal, one success
		t.Errorf("policy.delete events = %+v", e.rec.find("policy.delete"))
	}
	if n := len(e.rec.Events(func(ev audit.Event) bool {
		return ev.Action == "policy.apply" && ev.Outcome == audit.Success
	})); n != 3 {
		t.Errorf("successful policy.apply events = %d, want 3 (no event for an unchanged document)", n)
	}
}

func TestAllowlistAPI(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	// Without a project policy, the list is empty and adding creates the
	// default settings policy.
	al, err := e.admin.Allowlist(ctx, "p")
	if err != nil || len(al.Entries) != 0 || al.Policy != "project-p" {
		t.Fatalf("empty allowlist = %+v, %v", al, err)
	}
	if _, err := e.admin.ApplyPolicy(ctx, "project-p", projectPPolicy); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	al, err = e.admin.AddAllowlistEntry(ctx, "p", api.AllowlistEntry{ID: "CVE-2019-14697", Expires: "30d", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(al.Entries) != 1 || al.Entries[0].AddedBy != "admin" || al.Entries[0].Reason != "test" || al.Entries[0].Expired {
		t.Fatalf("after add = %+v", al)
	}
	exp, err := time.Parse(time.RFC3339, al.Entries[0].Expires)
	if err != nil || exp.Before(before.Add(30*24*time.Hour-time.Minute)) || exp.After(time.Now().Add(30*24*time.Hour+time.Minute)) {
		t.Fatalf("expires = %q, want 30 days from now (%v)", al.Entries[0].Expires, err)
	}
	// The entry is in the stored policy, which still holds its threshold.
	d, err := e.admin.Policy(ctx, "project-p")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := policy.Parse("stored", []byte(d.Document))
	if err != nil {
		t.Fatal(err)
	}
	v := ps[0].Spec.Vulnerabilities
	if v.MaxSeverity == nil || *v.MaxSeverity != policy.High || len(v.Allowlist) != 1 || v.Allowlist[0].ID != "CVE-2019-14697" {
		t.Fatalf("stored policy lost something: %s", d.Document)
	}
	// Adding the same advisory again replaces the entry.
	al, err = e.admin.AddAllowlistEntry(ctx, "p", api.AllowlistEntry{ID: "cve-2019-14697", Expires: "2020-01-01", Reason: "old"})
	if err != nil || len(al.Entries) != 1 || !al.Entries[0].Expired {
		t.Fatalf("replacing with an expired entry: %+v, %v", al, err)
	}
	_, err = e.admin.AddAllowlistEntry(ctx, "p", api.AllowlistEntry{ID: "CVE-1", Expires: "soon"})
	wantCode(t, "bad expires", err, apperr.EINVALID)
	_, err = e.admin.AddAllowlistEntry(ctx, "p", api.AllowlistEntry{Reason: "no id"})
	wantCode(t, "no id", err, apperr.EINVALID)

	dev := e.user(t, "dev", "dev-pw-12", rbac.RoleDeveloper)
	_, err = dev.AddAllowlistEntry(ctx, "p", api.AllowlistEntry{ID: "CVE-2020-1"})
	wantCode(t, "developer adding", err, apperr.EDENIED)
	if al, err := dev.Allowlist(ctx, "p"); err != nil || len(al.Entries) != 1 {
		t.Fatalf("developer reading: %+v, %v", al, err)
	}

	_, err = e.admin.RemoveAllowlistEntry(ctx, "p", "CVE-2020-9")
	wantCode(t, "removing a missing entry", err, apperr.ENOTFOUND)
	if al, err := e.admin.RemoveAllowlistEntry(ctx, "p", "CVE-2019-14697"); err != nil || len(al.Entries) != 0 {
		t.Fatalf("after remove: %+v, %v", al, err)
	}
	adds := e.rec.find("allowlist.add")
	var ok, denied int
	for _, ev := range adds {
		switch ev.Outcome {
		case audit.Success:
			ok++
			if ev.Project != "p" || ev.Details["id"] == "" {
				t.Errorf("allowlist.add event = %+v", ev)
			}
		case audit.Denied:
			denied++
		}
	}
	if ok != 2 || denied != 1 {
		t.Errorf("allowlist.add events: %d successes, %d refusals, want 2 and 1", ok, denied)
	}
	if len(e.rec.find("allowlist.remove")) != 1 {
		t.Errorf("allowlist.remove events = %+v", e.rec.find("allowlist.remove"))
	}
}

// TestAllowlistConcurrentAdds: concurrent edits of one allowlist lose no
// entry (each add either lands or is refused with ECONFLICT).
func TestAllowlistConcurrentAdds(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.admin.AddAllowlistEntry(ctx, "p", api.AllowlistEntry{ID: fmt.Sprintf("CVE-2020-%d", 1000+i)})
		}()
	}
	wg.Wait()
	al, err := e.admin.Allowlist(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, x := range al.Entries {
		have[x.ID] = true
	}
	landed := 0
	for i, err := range errs {
		id := fmt.Sprintf("CVE-2020-%d", 1000+i)
		switch {
		case err == nil:
			landed++
			if !have[id] {
				t.Errorf("%s was added but is not in the list %+v", id, al.Entries)
			}
		case apperr.Code(err) != apperr.ECONFLICT:
			t.Errorf("adding %s: %v", id, err)
		}
	}
	if landed == 0 || len(al.Entries) != landed {
		t.Fatalf("%d adds landed, the list has %d entries", landed, len(al.Entries))
	}
}
