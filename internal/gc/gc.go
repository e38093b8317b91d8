// Package gc removes blobs that nothing references any more and upload
// sessions that were abandoned, without ever racing a concurrent push.
//
// Safety rests on the store's contract: a blob touched (uploaded, mounted,
// linked) after the cutoff is never a candidate, and DeleteBlobIfUnused
// re-checks candidacy and removes the bytes inside one transaction, so a
// manifest that commits a reference to a blob either sees the blob or fails
// with MANIFEST_BLOB_UNKNOWN — it can never point at deleted bytes.
//
// A collection also removes what the scanner keeps about manifests that no
// repository stores any more (reports, first-seen rows, inventories, idle
// jobs): this is the one place scan data is cleaned, so a manifest deleted
// by any path (API, tag retention, project deletion) is covered.
package gc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/blob"
	"github.com/customs-dev/customs/internal/store"
)

// Store is the subset of store.RegistryStore the collector uses.
type Store interface {
	GCCandidates(ctx context.Context, cutoff time.Time, limit int) ([]digest.Digest, error)
	DeleteBlobIfUnused(ctx context.Context, d digest.Digest, cutoff time.Time, removeBytes func() error) (bool, error)
	// DeleteOrphanScanData is store.ScanReportStore's.
	DeleteOrphanScanData(ctx context.Context) (store.ScanCleanup, error)
}

// Options configures a Collector.
type Options struct {
	Store  Store
	Blobs  blob.Store
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// GracePeriod protects blobs touched more recently than this.
	GracePeriod time.Duration
	// UploadMaxAge is how long an upload may stay idle before removal.
	UploadMaxAge time.Duration
}

// Stats reports what one collection did.
type Stats struct {
	BlobsDeleted   int
	BytesFreed     int64
	UploadsDeleted int
	// Scan counts the scan reports, inventories and jobs removed because
	// no repository stores their manifest any more.
	Scan     store.ScanCleanup
	Duration time.Duration
}

// Collector runs garbage collections.
type Collector struct {
	opts Options
}

// New returns a Collector. Store, Blobs and Logger are required.
func New(opts Options) *Collector {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Collector{opts: opts}
}

// Run performs one collection: scan data of manifests no repository
// stores, unreferenced blobs last touched before now-GracePeriod, and
// abandoned uploads idle longer than UploadMaxAge. It stops early,
// returning ctx's error, when ctx is cancelled.
func (c *Collector) Run(ctx context.Context) (Stats, error) {
	start := c.opts.Now()
	var st Stats
	cutoff := start.Add(-c.opts.GracePeriod)

	sc, err := c.opts.Store.DeleteOrphanScanData(ctx)
	if err != nil {
		return st, fmt.Errorf("removing scan data of deleted manifests: %w", err)
	}
	st.Scan = sc

	const batch = 500
	for {
		cands, err := c.opts.Store.GCCandidates(ctx, cutoff, batch)
		if err != nil {
			return st, fmt.Errorf("listing gc candidates: %w", err)
		}
		deletedInBatch := 0
		for _, d := range cands {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			var size int64
			ok, err := c.opts.Store.DeleteBlobIfUnused(ctx, d, cutoff, func() error {
				if info, err := c.opts.Blobs.Stat(ctx, d); err == nil {
					size = info.Size
				}
				err := c.opts.Blobs.Delete(ctx, d)
				if apperr.Is(err, apperr.ENOTFOUND) {
					return nil // record without bytes (crash before publish)
				}
				return err
			})
			if err != nil {
				c.opts.Logger.Warn("gc: deleting blob failed", "digest", d, "err", err)
				continue
			}
			if ok {
				deletedInBatch++
				st.BlobsDeleted++
				st.BytesFreed += size
				c.opts.Logger.Debug("gc: deleted blob", "digest", d, "size", size)
			}
		}
		if len(cands) < batch || deletedInBatch == 0 {
			break
		}
	}

	uploadCutoff := start.Add(-c.opts.UploadMaxAge)
	var stale []string
	err = c.opts.Blobs.Uploads(ctx, func(u blob.UploadInfo) error {
		if u.UpdatedAt.Before(uploadCutoff) {
			stale = append(stale, u.ID)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("listing uploads: %w", err)
	}
	for _, id := range stale {
		if err := c.opts.Blobs.DeleteUpload(ctx, id); err != nil && !apperr.Is(err, apperr.ENOTFOUND) {
			c.opts.Logger.Warn("gc: deleting upload failed", "upload", id, "err", err)
			continue
		}
		st.UploadsDeleted++
	}

	st.Duration = c.opts.Now().Sub(start)
	c.opts.Logger.Info("gc: done", "blobs", st.BlobsDeleted, "bytes", st.BytesFreed,
		"uploads", st.UploadsDeleted, "scan_reports", st.Scan.Reports, "inventories", st.Scan.Inventories,
		"scan_jobs", st.Scan.Jobs, "duration", st.Duration)
	return st, nil
}
