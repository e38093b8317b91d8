package storetest

import (
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var allowlistTests = []test{
	{"system allowlist: add, replace, list, remove, revisions", func(t *testing.T, e *env) {
		list, err := e.s.SystemAllowlist(e.ctx)
		ok(t, err)
		if len(list) != 0 {
			t.Fatalf("SystemAllowlist of an empty store = %+v", list)
		}
		_, err = e.s.PutSystemAllowlistEntry(e.ctx, &store.AllowlistEntry{})
		wantCode(t, err, apperr.EINVALID, "", "")

		exp := e.clk.Now().Add(30 * 24 * time.Hour)
		a := &store.AllowlistEntry{ID: "CVE-2019-14697", Expires: exp, Reason: "musl fix pending", AddedBy: "admin"}
		rev1, err := e.s.PutSystemAllowlistEntry(e.ctx, a)
		ok(t, err)
		sameTime(t, "AddedAt", a.AddedAt, e.clk.Now())
		rev, err := e.s.PolicyRevision(e.ctx)
		ok(t, err)
		if rev != rev1 || rev1 < 1 {
			t.Fatalf("revision after an add = %d (PolicyRevision %d), want the new global revision", rev1, rev)
		}
		// Another package of the same advisory is another entry; the same
		// advisory, package and repository (other case) replaces it.
		rev2, err := e.s.PutSystemAllowlistEntry(e.ctx, &store.AllowlistEntry{ID: "CVE-2019-14697", Package: "musl", AddedBy: "admin"})
		ok(t, err)
		rev3, err := e.s.PutSystemAllowlistEntry(e.ctx, &store.AllowlistEntry{ID: "cve-2019-14697", Reason: "replaced", AddedBy: "root"})
		ok(t, err)
		_, err = e.s.PutSystemAllowlistEntry(e.ctx, &store.AllowlistEntry{ID: "CVE-2000-0001", Repository: "*.example/**"})
		ok(t, err)
		if !(rev1 < rev2 && rev2 < rev3) {
			t.Fatalf("revisions %d, %d, %d do not increase", rev1, rev2, rev3)
		}
		list, err = e.s.SystemAllowlist(e.ctx)
		ok(t, err)
		if len(list) != 3 || list[0].ID != "CVE-2000-0001" || list[0].Repository != "*.example/**" ||
			list[1].ID != "cve-2019-14697" || list[1].Package != "" || list[1].Reason != "replaced" || list[1].AddedBy != "root" || !list[1].Expires.IsZero() ||
			list[2].Package != "musl" {
			t.Fatalf("SystemAllowlist = %+v", list)
		}
		// Expiry survives the round trip.
		_, err = e.s.PutSystemAllowlistEntry(e.ctx, &store.AllowlistEntry{ID: "CVE-2000-0001", Repository: "*.example/**", Expires: exp})
		ok(t, err)
		list, err = e.s.SystemAllowlist(e.ctx)
		ok(t, err)
		sameTime(t, "Expires", list[0].Expires, exp)

		n, rev4, err := e.s.DeleteSystemAllowlistEntries(e.ctx, "CVE-2019-14697")
		ok(t, err)
		if n != 2 || rev4 <= rev3 {
			t.Fatalf("DeleteSystemAllowlistEntries = %d entries at revision %d, want 2 after %d", n, rev4, rev3)
		}
		_, _, err = e.s.DeleteSystemAllowlistEntries(e.ctx, "CVE-2019-14697")
		wantCode(t, err, apperr.ENOTFOUND, "", "CVE-2019-14697")
		list, err = e.s.SystemAllowlist(e.ctx)
		ok(t, err)
		if len(list) != 1 {
			t.Fatalf("after delete: %+v", list)
		}
	}},
}
