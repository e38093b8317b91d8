package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var policyTests = []test{
	{"apply, get, list, history, delete", func(t *testing.T, e *env) {
		rev, err := e.s.PolicyRevision(e.ctx)
		ok(t, err)
		if rev != 0 {
			t.Fatalf("PolicyRevision of an empty store = %d, want 0", rev)
		}
		_, err = e.s.Policy(e.ctx, "base")
		wantCode(t, err, apperr.ENOTFOUND, "", "base")

		a := &store.PolicyDocument{Name: "base", Document: "v1", UpdatedBy: "alice"}
		ok(t, e.s.PutPolicy(e.ctx, a))
		if a.Revision != 1 {
			t.Fatalf("first PutPolicy revision = %d, want 1", a.Revision)
		}
		sameTime(t, "UpdatedAt", a.UpdatedAt, e.clk.Now())
		e.clk.Advance(time.Second)
		b := &store.PolicyDocument{Name: "project-kuard", Project: "kuard", Document: "k1", UpdatedBy: "bob"}
		ok(t, e.s.PutPolicy(e.ctx, b))
		a2 := &store.PolicyDocument{Name: "base", Document: "v2", UpdatedBy: "carol"}
		ok(t, e.s.PutPolicy(e.ctx, a2))
		if b.Revision != 2 || a2.Revision != 3 {
			t.Fatalf("revisions = %d, %d, want 2, 3", b.Revision, a2.Revision)
		}

		got, err := e.s.Policy(e.ctx, "base")
		ok(t, err)
		if got.Document != "v2" || got.Revision != 3 || got.UpdatedBy != "carol" || got.Project != "" {
			t.Fatalf("Policy(base) = %+v, want v2 at revision 3 by carol", got)
		}
		got, err = e.s.Policy(e.ctx, "project-kuard")
		ok(t, err)
		if got.Project != "kuard" || got.Document != "k1" {
			t.Fatalf("Policy(project-kuard) = %+v", got)
		}
		sameTime(t, "UpdatedAt", got.UpdatedAt, e.clk.Now())

		list, err := e.s.Policies(e.ctx, store.Page{})
		ok(t, err)
		var names []string
		for _, d := range list {
			names = append(names, d.Name)
		}
		if !slices.Equal(names, []string{"base", "project-kuard"}) {
			t.Fatalf("Policies = %q", names)
		}
		list, err = e.s.Policies(e.ctx, store.Page{N: 1, Last: "base"})
		ok(t, err)
		if len(list) != 1 || list[0].Name != "project-kuard" {
			t.Fatalf("Policies after base = %+v", list)
		}
		_, err = e.s.Policies(e.ctx, store.Page{N: -1})
		wantCode(t, err, apperr.EINVALID, "", "")

		rev, err = e.s.DeletePolicy(e.ctx, "base", "dave")
		ok(t, err)
		if rev != 4 {
			t.Fatalf("DeletePolicy revision = %d, want 4", rev)
		}
		_, err = e.s.Policy(e.ctx, "base")
		wantCode(t, err, apperr.ENOTFOUND, "", "base")
		_, err = e.s.DeletePolicy(e.ctx, "base", "dave")
		wantCode(t, err, apperr.ENOTFOUND, "", "base")
		if rev, _ := e.s.PolicyRevision(e.ctx); rev != 4 {
			t.Fatalf("PolicyRevision after a failed delete = %d, want 4", rev)
		}

		hist, err := e.s.PolicyHistory(e.ctx, "base")
		ok(t, err)
		type h struct {
			rev     int64
			doc     string
			deleted bool
			by      string
		}
		var gotH []h
		for _, d := range hist {
			gotH = append(gotH, h{d.Revision, d.Document, d.Deleted, d.UpdatedBy})
		}
		wantH := []h{{4, "v2", true, "dave"}, {3, "v2", false, "carol"}, {1, "v1", false, "alice"}}
		if !slices.Equal(gotH, wantH) {
			t.Fatalf("PolicyHistory = %+v, want %+v", gotH, wantH)
		}
		_, err = e.s.PolicyHistory(e.ctx, "never")
		wantCode(t, err, apperr.ENOTFOUND, "", "never")

		// Applied again after deletion: a new revision, history kept.
		ok(t, e.s.PutPolicy(e.ctx, &store.PolicyDocument{Name: "base", Document: "v3"}))
		if hist, _ := e.s.PolicyHistory(e.ctx, "base"); len(hist) != 4 || hist[0].Revision != 5 || hist[0].Deleted {
			t.Fatalf("history after re-apply = %+v", hist)
		}
	}},
	{"invalid", func(t *testing.T, e *env) {
		wantCode(t, e.s.PutPolicy(e.ctx, &store.PolicyDocument{Document: "x"}), apperr.EINVALID, "", "name")
		wantCode(t, e.s.PutPolicy(e.ctx, &store.PolicyDocument{Name: "p"}), apperr.EINVALID, "", "p")
		if rev, _ := e.s.PolicyRevision(e.ctx); rev != 0 {
			t.Fatalf("PolicyRevision after refused puts = %d, want 0", rev)
		}
	}},
	{"replace on condition", func(t *testing.T, e *env) {
		wantCode(t, e.s.ReplacePolicy(e.ctx, &store.PolicyDocument{Name: "p", Document: "a"}, 3), apperr.ECONFLICT, "", "p")
		d := &store.PolicyDocument{Name: "p", Document: "a"}
		ok(t, e.s.ReplacePolicy(e.ctx, d, 0))
		wantCode(t, e.s.ReplacePolicy(e.ctx, &store.PolicyDocument{Name: "p", Document: "b"}, 0), apperr.ECONFLICT, "", "p")
		ok(t, e.s.PutPolicy(e.ctx, &store.PolicyDocument{Name: "other", Document: "x"}))
		wantCode(t, e.s.ReplacePolicy(e.ctx, &store.PolicyDocument{Name: "p", Document: "b"}, d.Revision+1), apperr.ECONFLICT, "", "p")
		ok(t, e.s.ReplacePolicy(e.ctx, &store.PolicyDocument{Name: "p", Document: "b"}, d.Revision))
		if got, _ := e.s.Policy(e.ctx, "p"); got.Document != "b" {
			t.Fatalf("after a replace, document = %q", got.Document)
		}
		if rev, _ := e.s.PolicyRevision(e.ctx); rev != 3 {
			t.Fatalf("PolicyRevision = %d, want 3 (refused replaces take none)", rev)
		}
		wantCode(t, e.s.ReplacePolicy(e.ctx, &store.PolicyDocument{Name: "p", Document: "c"}, -1), apperr.EINVALID, "", "")
		// Deleted: base 0 again.
		_, err := e.s.DeletePolicy(e.ctx, "p", "")
		ok(t, err)
		ok(t, e.s.ReplacePolicy(e.ctx, &store.PolicyDocument{Name: "p", Document: "d"}, 0))
	}},
	{"concurrent changes take distinct revisions", func(t *testing.T, e *env) {
		const n = 8
		revs := make([]int64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := &store.PolicyDocument{Name: "p", Document: "doc"}
				if err := e.s.PutPolicy(e.ctx, d); err != nil {
					t.Error(err)
				}
				revs[i] = d.Revision
			}()
		}
		wg.Wait()
		slices.Sort(revs)
		for i, r := range revs {
			if r != int64(i+1) {
				t.Fatalf("revisions = %v, want 1..%d", revs, n)
			}
		}
		if rev, _ := e.s.PolicyRevision(e.ctx); rev != n {
			t.Fatalf("PolicyRevision = %d, want %d", rev, n)
		}
		if hist, _ := e.s.PolicyHistory(e.ctx, "p"); len(hist) != n {
			t.Fatalf("history has %d entries, want %d", len(hist), n)
		}
	}},
}
