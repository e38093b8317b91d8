package sqldb

import (
	"context"
	"database/sql"
	"errors"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// ScanReportData returns the report of digest without its findings rows
// (Findings nil), with one prepared query: the policy decider reads it on
// every decision. ENOTFOUND if there is none.
func (db *DB) ScanReportData(ctx context.Context, digest string) (*store.ScanReport, error) {
	r := &store.ScanReport{}
	c := &r.Counts
	err := db.stmts.scanReportData.QueryRowContext(ctx, digest).
		Scan(&r.Digest, &r.MediaType, &r.Platform, &r.Status, &r.Reason, &r.VulnRevision, nullTime{&r.ScannedAt},
			nullTime{&r.MatchedAt}, &r.Packages, &c.Critical, &c.High, &c.Medium, &c.Low, &c.None, &c.Unknown,
			&r.Data, timeScan{&r.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "no scan report of %s", digest)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return r, nil
}
