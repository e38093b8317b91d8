package storetest

import (
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var scanReportDataTests = []test{
	{"report data without findings equals the full report's columns", func(t *testing.T, e *env) {
		_, err := e.s.ScanReportData(e.ctx, "sha256:a")
		wantCode(t, err, apperr.ENOTFOUND, "", "sha256:a")
		ok(t, e.s.PutScanReport(e.ctx, report("sha256:a", 3, t0, "CVE-1", "CVE-2")))
		full, err := e.s.ScanReport(e.ctx, "sha256:a")
		ok(t, err)
		got, err := e.s.ScanReportData(e.ctx, "sha256:a")
		ok(t, err)
		if got.Findings != nil {
			t.Fatalf("ScanReportData has findings %v", got.Findings)
		}
		full.Findings = nil
		if got.Digest != full.Digest || got.Status != full.Status || got.VulnRevision != full.VulnRevision || got.Platform != full.Platform ||
			got.Packages != full.Packages || got.Counts != full.Counts || string(got.Data) != string(full.Data) || got.Reason != full.Reason {
			t.Fatalf("ScanReportData = %+v, ScanReport = %+v", got, full)
		}
		sameTime(t, "MatchedAt", got.MatchedAt, full.MatchedAt)
		sameTime(t, "UpdatedAt", got.UpdatedAt, full.UpdatedAt)
		ok(t, e.s.PutScanReport(e.ctx, &store.ScanReport{Digest: "sha256:f", Status: store.ScanFailed, Reason: "corrupt"}))
		got, err = e.s.ScanReportData(e.ctx, "sha256:f")
		ok(t, err)
		if got.Status != store.ScanFailed || got.Reason != "corrupt" || !got.MatchedAt.IsZero() {
			t.Fatalf("failed report data = %+v", got)
		}
	}},
}
