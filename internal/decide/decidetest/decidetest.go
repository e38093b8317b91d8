// Package decidetest holds test fixtures shared by the tests of the
// decider and of the doors built on it.
package decidetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/severity"
	"github.com/opencontainers/go-digest"
)

// ReportStore is where PutMuslReport stores (store.ScanReportStore's
// write side).
type ReportStore interface {
	PutScanReport(ctx context.Context, r *store.ScanReport) error
}

// PutMuslReport stores in db a done scan report of dg with ALPINE-CVE-2019-14697
// (critical) in musl 1.1.20-r4, fixed in 1.1.20-r5.
func PutMuslReport(t testing.TB, db ReportStore, dg digest.Digest, now time.Time) {
	t.Helper()
	rep := report.Report{Digest: dg.String(), Status: report.StatusDone, VulnDBRevision: 3, MatchedAt: now,
		Findings: []report.Finding{{
			AdvisoryID: "ALPINE-CVE-2019-14697", Aliases: []string{"CVE-2019-14697"},
			Package:          inventory.Package{Ecosystem: "Alpine", Name: "musl", Version: "1.1.20-r4"},
			InstalledVersion: "1.1.20-r4", FixedVersions: []string{"1.1.20-r5"}, Status: match.StatusFixed,
			Severity: severity.Rating{Level: severity.Critical},
		}}}
	var buf bytes.Buffer
	if err := report.EncodeJSON(&buf, &rep); err != nil {
		t.Fatal(err)
	}
	if err := db.PutScanReport(context.Background(), &store.ScanReport{Digest: dg.String(), Status: store.ScanDone, VulnRevision: 3,
		MatchedAt: now, ScannedAt: now, Data: buf.Bytes(),
		Findings: []store.ScanFinding{{Key: "ALPINE-CVE-2019-14697 musl", AdvisoryID: "ALPINE-CVE-2019-14697"}}}); err != nil {
		t.Fatal(err)
	}
}
