package storetest

import (
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var workloadAuditTests = []test{
	{"lease: one owner at a time, expiry, release", func(t *testing.T, e *env) {
		_, err := e.s.ClaimWorkloadAudit(e.ctx, "", time.Minute)
		wantCode(t, err, apperr.EINVALID, "", "owner")
		got, err := e.s.ClaimWorkloadAudit(e.ctx, "a", time.Minute)
		ok(t, err)
		if !got {
			t.Fatal("first claim by a failed")
		}
		if got, err = e.s.ClaimWorkloadAudit(e.ctx, "b", time.Minute); err != nil || got {
			t.Fatalf("claim by b while a holds it = %v, %v, want false", got, err)
		}
		if got, err = e.s.ClaimWorkloadAudit(e.ctx, "a", time.Minute); err != nil || !got {
			t.Fatalf("renewal by a = %v, %v, want true", got, err)
		}
		e.clk.Advance(61 * time.Second)
		if got, err = e.s.ClaimWorkloadAudit(e.ctx, "b", time.Minute); err != nil || !got {
			t.Fatalf("claim by b after a's lease expired = %v, %v, want true", got, err)
		}
		ok(t, e.s.ReleaseWorkloadAudit(e.ctx, "a")) // not a's: nothing
		if got, _ = e.s.ClaimWorkloadAudit(e.ctx, "a", time.Minute); got {
			t.Fatal("a claimed the lease b holds after a's release of nothing")
		}
		ok(t, e.s.ReleaseWorkloadAudit(e.ctx, "b"))
		if got, err = e.s.ClaimWorkloadAudit(e.ctx, "a", time.Minute); err != nil || !got {
			t.Fatalf("claim by a after b's release = %v, %v, want true", got, err)
		}
	}},
	{"put and read back; only the holder writes", func(t *testing.T, e *env) {
		_, err := e.s.LastWorkloadAudit(e.ctx)
		wantCode(t, err, apperr.ENOTFOUND, "", "workload audit")
		a := &store.WorkloadAudit{Owner: "a", Trigger: "policy", Started: e.clk.Now(), Finished: e.clk.Now().Add(time.Second),
			PolicyRevision: 3, VulnRevision: 7, Pods: 2, Containers: 3, Images: 2,
			Findings: []store.WorkloadFinding{{Namespace: "production", Pod: "kuard", Container: "kuard", Kind: "container",
				Image: "gcr.io/kuar-demo/kuard-amd64:blue", Digest: "sha256:abc", Outcome: "refused", Reason: "no matching image policy"}}}
		err = e.s.PutWorkloadAudit(e.ctx, a)
		wantCode(t, err, apperr.ECONFLICT, "", "no longer held")
		_, err = e.s.LastWorkloadAudit(e.ctx)
		wantCode(t, err, apperr.ENOTFOUND, "", "workload audit")

		_, err = e.s.ClaimWorkloadAudit(e.ctx, "a", time.Minute)
		ok(t, err)
		ok(t, e.s.PutWorkloadAudit(e.ctx, a))
		got, err := e.s.LastWorkloadAudit(e.ctx)
		ok(t, err)
		if got.Owner != "a" || got.Trigger != "policy" || got.PolicyRevision != 3 || got.VulnRevision != 7 ||
			got.Pods != 2 || got.Containers != 3 || got.Images != 2 || len(got.Findings) != 1 || got.Findings[0] != a.Findings[0] {
			t.Fatalf("LastWorkloadAudit = %+v, want %+v", got, a)
		}
		sameTime(t, "Finished", got.Finished, a.Finished)

		// A second run replaces the first; an empty result reads back as
		// an empty list.
		b := &store.WorkloadAudit{Owner: "a", Trigger: "interval", Finished: e.clk.Now()}
		ok(t, e.s.PutWorkloadAudit(e.ctx, b))
		got, err = e.s.LastWorkloadAudit(e.ctx)
		ok(t, err)
		if got.Trigger != "interval" || got.Findings == nil || len(got.Findings) != 0 {
			t.Fatalf("after the second put: %+v", got)
		}

		// After a's lease expired and b claimed it, a's late result is
		// refused.
		e.clk.Advance(2 * time.Minute)
		_, err = e.s.ClaimWorkloadAudit(e.ctx, "b", time.Minute)
		ok(t, err)
		err = e.s.PutWorkloadAudit(e.ctx, a)
		wantCode(t, err, apperr.ECONFLICT, "", "no longer held")
		err = e.s.PutWorkloadAudit(e.ctx, &store.WorkloadAudit{})
		wantCode(t, err, apperr.EINVALID, "", "owner")
	}},
}
