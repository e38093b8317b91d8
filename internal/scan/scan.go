// Package scan is customs' scanner service: it inventories every image
// manifest pushed to the registry, matches the inventory against the
// vulnerability database, and keeps a report per manifest digest current as
// the database changes.
//
// # Work
//
// All work goes through the persistent queue of store.ScanJobStore, so that
// any replica may do it and a restart loses none of it:
//
//   - a manifest job reads an image's manifest, config and layers from
//     customs' own blob store (never over HTTP), inventories it through
//     package scan/extract (layer results cached in the database by diffID,
//     so a layer shared by many images is read once), stores the inventory
//     (vulndb.PutInventory) and matches it; an image index's job waits for
//     its platform manifests' jobs and summarises their reports;
//   - the one rematch job runs after every vulnerability database change:
//     it asks the database which stored inventories the changed advisories
//     affect (vulndb.AffectedSince) and matches those again from their
//     stored inventories, reading no layer.
//
// Jobs are claimed with a lease that a heartbeat renews; a job whose worker
// died is claimed again when the lease expires. Failures are retried with
// exponential backoff up to MaxAttempts; content that cannot be scanned (an
// artifact that is not an image, an unsupported layer media type) ends as
// "unsupported", and hostile or corrupt content as "failed", without
// retries. A push never waits for a scan: Pushed only queues a job.
package scan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/scan/extract"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb"
)

// Store is what the scanner keeps its work and results in.
type Store interface {
	store.ScanJobStore
	store.ScanReportStore
	store.ScanSettingsStore
	store.LayerCacheStore
	ReferrerStore
	// Manifest returns manifest d of repo, or ENOTFOUND.
	Manifest(ctx context.Context, repo string, d digest.Digest) (*store.Manifest, error)
	// Inventory returns the stored inventory under key, or ENOTFOUND.
	Inventory(ctx context.Context, key store.InventoryKey) (*store.StoredInventory, error)
	// VulnState returns the vulnerability database's revision.
	VulnState(ctx context.Context) (store.VulnState, error)
}

// VulnDB is the part of the vulnerability database the scanner uses (see
// vulndb.Service).
type VulnDB interface {
	// PutInventory stores inv under key for reverse matching.
	PutInventory(ctx context.Context, key store.InventoryKey, inv *inventory.Inventory) error
	// Match returns inv's findings at the current revision.
	Match(ctx context.Context, inv *inventory.Inventory) (*vulndb.MatchResult, error)
	// AffectedSince returns the stored inventories that changes after
	// revision since affect.
	AffectedSince(ctx context.Context, since int64) (*vulndb.AffectedSinceResult, error)
}

// Defaults of Options.
const (
	DefaultWorkers          = 2
	DefaultLease            = 2 * time.Minute
	DefaultMaxAttempts      = 5
	DefaultRetryBackoff     = 10 * time.Second
	DefaultMaxRetryBackoff  = 10 * time.Minute
	DefaultPollInterval     = 2 * time.Second
	DefaultRematchInterval  = 5 * time.Second
	DefaultJobTimeout       = 30 * time.Minute
	DefaultIndexWait        = 2 * time.Second
	DefaultMaxManifestBytes = 4 << 20
	DefaultMaxConfigBytes   = 8 << 20
)

// Options configures a Scanner. Store, Blobs and VulnDB are required; zero
// values of the others mean their defaults.
type Options struct {
	Store  Store
	Blobs  Blobs
	VulnDB VulnDB
	Logger *slog.Logger
	// Registerer receives the scanner's metrics (none when nil).
	Registerer prometheus.Registerer
	// Clock is the time source (default time.Now).
	Clock func() time.Time
	// Workers is how many jobs this process runs at once (default 2).
	Workers int
	// Lease is how long a claimed job stays with its worker without a
	// heartbeat (default 2m); heartbeats renew it every quarter of it.
	Lease time.Duration
	// MaxAttempts bounds the runs of a failing job (default 5).
	MaxAttempts int
	// RetryBackoff is the wait before the first retry, doubled for each
	// further one up to MaxRetryBackoff (defaults 10s and 10m).
	RetryBackoff, MaxRetryBackoff time.Duration
	// PollInterval is how often idle workers look for due jobs (default
	// 2s); jobs queued by this process wake them at once.
	PollInterval time.Duration
	// RematchInterval is how often the vulnerability database's revision
	// is checked for changes to re-match (default 5s).
	RematchInterval time.Duration
	// JobTimeout bounds one run of a job (default 30m).
	JobTimeout time.Duration
	// IndexWait is how long an image index's job waits before looking at
	// its platform manifests' scans again (default 2s).
	IndexWait time.Duration
	// MaxManifestBytes and MaxConfigBytes cap the manifest and config
	// blobs read (defaults 4 MiB and 8 MiB).
	MaxManifestBytes, MaxConfigBytes int64
	// Extract configures layer extraction (limits, temp dir); its Cache is
	// replaced by the database-backed layer cache.
	Extract extract.Config
	// Owner names this process in job leases (default host-pid-random).
	Owner string
	// PushSBOM stores, after every scan that reads an image's layers, its
	// inventory as a CycloneDX SBOM referrer of the image in each
	// repository holding it (config scan.pushSBOM; see sbomref.go). When
	// false, only repositories of projects whose SBOMReferrer setting is
	// on get one.
	PushSBOM bool
	// BlobWriter writes the SBOM referrers' blobs; nil means Blobs if it
	// implements BlobWriter (it must when PushSBOM is set). Without one,
	// no referrer is stored.
	BlobWriter BlobWriter
	// ToolVersion is customs' version, named as the SBOMs' producer.
	ToolVersion string
}

func (o *Options) defaults() error {
	if o.Store == nil || o.Blobs == nil || o.VulnDB == nil {
		return apperr.Errorf(apperr.EINVALID, "scan: Store, Blobs and VulnDB are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	set(&o.Lease, DefaultLease)
	set(&o.RetryBackoff, DefaultRetryBackoff)
	set(&o.MaxRetryBackoff, DefaultMaxRetryBackoff)
	set(&o.PollInterval, DefaultPollInterval)
	set(&o.RematchInterval, DefaultRematchInterval)
	set(&o.JobTimeout, DefaultJobTimeout)
	set(&o.IndexWait, DefaultIndexWait)
	if o.MaxManifestBytes <= 0 {
		o.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if o.MaxConfigBytes <= 0 {
		o.MaxConfigBytes = DefaultMaxConfigBytes
	}
	if o.BlobWriter == nil {
		if w, ok := o.Blobs.(BlobWriter); ok {
			o.BlobWriter = w
		} else if o.PushSBOM {
			return apperr.Errorf(apperr.EINVALID, "scan: PushSBOM needs a BlobWriter, and Blobs (%T) cannot write", o.Blobs)
		}
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	return nil
}

// Scanner is the scan service. Its methods are safe for concurrent use.
type Scanner struct {
	opts    Options
	st      Store
	blobs   Blobs
	vdb     VulnDB
	log     *slog.Logger
	x       *extract.Extractor
	metrics *metrics
	wake    chan struct{}

	runMu   sync.Mutex
	running bool
}

// New returns a Scanner; Run starts its workers.
func New(opts Options) (*Scanner, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &Scanner{opts: opts, st: opts.Store, blobs: opts.Blobs, vdb: opts.VulnDB, log: opts.Logger,
		wake: make(chan struct{}, opts.Workers)}
	s.metrics = newMetrics(opts.Registerer, opts.Store)
	xcfg := opts.Extract
	xcfg.Cache = &layerCache{st: opts.Store, log: opts.Logger, m: s.metrics}
	x, err := extract.New(xcfg)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	s.x = x
	return s, nil
}

// ExtractorVersion is the version of the extractor set, which keys cached
// layer results.
func (s *Scanner) ExtractorVersion() string { return s.x.Version() }

// now is the scanner's clock, in UTC at the stores' precision.
func (s *Scanner) now() time.Time { return s.opts.Clock().UTC().Truncate(time.Microsecond) }

// poke wakes an idle worker of this process.
func (s *Scanner) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs Options.Workers workers and the vulnerability database watcher
// until ctx is cancelled, then waits for them: a job cut off by the
// cancellation is queued again at once, without counting as an attempt.
// It also removes layer results of other extractor versions once. Run may
// be called once at a time.
func (s *Scanner) Run(ctx context.Context) error {
	s.runMu.Lock()
	if s.running {
		s.runMu.Unlock()
		return apperr.Errorf(apperr.ECONFLICT, "scan: Run is already running")
	}
	s.running = true
	s.runMu.Unlock()
	defer func() {
		s.runMu.Lock()
		s.running = false
		s.runMu.Unlock()
	}()
	if n, err := s.st.DeleteLayerResults(ctx, s.x.Version()); err != nil {
		s.log.Warn("scan: removing layer results of old extractor versions failed", "err", err)
	} else if n > 0 {
		s.log.Info("scan: removed layer results of old extractor versions", "count", n)
	}
	s.log.Info("scan: workers started", "workers", s.opts.Workers, "owner", s.opts.Owner, "extractor", s.x.Version())
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Add(1)
		go func() { defer wg.Done(); s.worker(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.watchVulnDB(ctx) }()
	wg.Wait()
	return nil
}

// worker runs due jobs until ctx ends.
func (s *Scanner) worker(ctx context.Context) {
	for ctx.Err() == nil {
		ran, err := s.RunOne(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("scan: claiming a job failed", "err", err)
		}
		if ran {
			continue
		}
		t := time.NewTimer(s.opts.PollInterval)
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// watchVulnDB queues the rematch job whenever the vulnerability database
// moved on, until ctx ends.
func (s *Scanner) watchVulnDB(ctx context.Context) {
	t := time.NewTicker(s.opts.RematchInterval)
	defer t.Stop()
	for {
		if _, err := s.CheckVulnDB(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("scan: checking the vulnerability database revision failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pushed queues a scan of manifest m if its project scans on push and the
// manifest has no done report yet (a done report is kept current by
// rematches). It only queues: the scan runs on a worker. Errors are logged,
// never returned: a push never fails because of the scanner.
func (s *Scanner) Pushed(ctx context.Context, m *store.Manifest) {
	// The push is stored: queue its scan even if the client went away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	project, _, _ := strings.Cut(m.Repository, "/")
	log := s.log.With("repository", m.Repository, "digest", m.Digest)
	settings, err := s.st.ScanSettings(ctx, project)
	if err != nil {
		log.Error("scan on push: reading the project's scan settings failed; not scanning", "err", err)
		return
	}
	if !settings.ScanOnPush {
		return
	}
	if r, err := s.st.ScanReport(ctx, m.Digest.String()); err == nil && r.Status == store.ScanDone {
		return
	}
	j := &store.ScanJob{Kind: store.ScanJobManifest, Subject: m.Digest.String(), Repository: m.Repository, Trigger: "push"}
	if _, err := s.st.EnqueueScanJob(ctx, j); err != nil {
		log.Error("scan on push: queueing the scan failed", "err", err)
		return
	}
	s.poke()
}

// Request queues a scan of manifest d of repo (on demand): it scans again
// even when a report exists. For an image index, each platform manifest is
// queued too. ENOTFOUND if repo does not store d.
func (s *Scanner) Request(ctx context.Context, repo string, d digest.Digest, trigger string) (*store.ScanJob, error) {
	m, err := s.st.Manifest(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	if isIndex(m.MediaType) {
		children, err := s.indexChildren(ctx, d)
		if err != nil {
			return nil, err
		}
		for _, c := range children {
			if _, err := s.st.EnqueueScanJob(ctx, &store.ScanJob{Kind: store.ScanJobManifest, Subject: c.Digest.String(),
				Repository: repo, Trigger: trigger}); err != nil {
				return nil, err
			}
		}
	}
	j := &store.ScanJob{Kind: store.ScanJobManifest, Subject: d.String(), Repository: repo, Trigger: trigger}
	if _, err := s.st.EnqueueScanJob(ctx, j); err != nil {
		return nil, err
	}
	s.poke()
	return j, nil
}

// CheckVulnDB queues the rematch job when the vulnerability database's
// revision moved past the revision reports were last matched up to, or
// when a report was matched at an older one. It reports whether it queued
// the job.
func (s *Scanner) CheckVulnDB(ctx context.Context) (bool, error) {
	vs, err := s.st.VulnState(ctx)
	if err != nil {
		return false, err
	}
	rm, err := s.st.RematchedRevision(ctx)
	if err != nil {
		return false, err
	}
	need := vs.Revision > rm
	if !need {
		stale, err := s.st.StaleScanReports(ctx, rm, 1)
		if err != nil {
			return false, err
		}
		need = len(stale) > 0
	}
	if !need {
		return false, nil
	}
	queued, err := s.st.EnqueueScanJob(ctx, &store.ScanJob{Kind: store.ScanJobRematch, Subject: store.ScanRematchSubject, Trigger: "vulndb"})
	if err != nil {
		return false, err
	}
	if queued {
		s.log.Info("scan: vulnerability database changed; re-matching stored inventories", "revision", vs.Revision, "rematched", rm)
		s.poke()
	}
	return queued, nil
}
