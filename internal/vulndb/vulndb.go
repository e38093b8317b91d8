// Package vulndb is customs' vulnerability database: it imports OSV
// advisories and CVE severity feeds into the metadata store, keeps them per
// source with a database revision, and answers matching questions both ways
// — which advisories affect an inventory (Match), and which stored
// inventories a set of changed advisories affects (Affected, AffectedSince).
//
// # Sources
//
// A source is an OSV all.zip export, a directory of OSV JSON/YAML records
// (searched recursively, zip exports inside it included), a single record
// file, or an http(s) URL of an all.zip or of a single record, fetched with
// conditional requests (ETag / Last-Modified kept per source; 304 means
// unchanged and nothing is read). Files that are not OSV records may be CVE
// severity feeds: NVD CVE API 2.0 documents and CVE JSON 5 records, whose
// ratings are kept per CVE and reach advisories through their aliases.
//
// # Imports
//
// Every source owns its records and is a full export: an import writes the
// records whose content hash changed and removes those that disappeared,
// all in one transaction that also bumps the database revision (when
// anything changed) and logs the changed ids under it. A failure of the
// source itself (unreadable, corrupted zip, HTTP error, over the size
// limits) changes nothing. A bad record (not JSON, not OSV, a version that
// does not parse for its ecosystem, an unknown ecosystem) is skipped and
// reported as a *RecordError naming the file, the id and the field; the
// stored version of a record that is bad this time stays.
//
// # Matching
//
// Index builds a match.Index from the database once per revision and
// caches it; any replica rebuilds from the database, checking the revision
// at most once per Options.RevisionCheck. A rebuild runs in the background
// while the previous index keeps answering (only the first build of a
// process is waited for), and every answer names the revision it is for.
// Operator overrides and CVE feed ratings reach the index through
// match.Lookup.
//
// # Replicas
//
// An import holds a lease on its source in the database (renewed while it
// runs, with its progress), so one process at a time imports a source and
// every replica shows the imports running anywhere; UpdateDue, the
// scheduled update, skips sources another process imports or has just
// updated. The change log behind AffectedSince is pruned after
// Options.ChangeLogRetention; a revision older than what it keeps gets
// ErrTooOld.
package vulndb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// Store is what the service keeps its data in.
type Store interface {
	store.VulnStore
	store.InventoryStore
}

// Source names a place to import from.
type Source struct {
	// Name identifies the source's records; "" means Location.
	Name string `json:"name"`
	// Location is a file or directory path, or an http(s) URL.
	Location string `json:"location"`
	// Force reads the source even when its validators say it has not
	// changed (HTTP ETag / Last-Modified, a file's content hash): after an
	// upgrade of customs that reads records it skipped before.
	Force bool `json:"-"`
}

// isURL reports whether loc is fetched over HTTP.
func isURL(loc string) bool {
	l := strings.ToLower(loc)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// Defaults of Options.
const (
	DefaultMaxRecordSize = 4 << 20
	DefaultMaxFeedSize   = 512 << 20
	DefaultMaxSourceSize = 4 << 30
	DefaultRevisionCheck = time.Second
	DefaultImportLease   = 2 * time.Minute
	DefaultProgressEvery = 2 * time.Second
)

// Options configures a Service. Store is required.
type Options struct {
	Store  Store
	Logger *slog.Logger
	// Sources are the configured sources Update imports.
	Sources []Source
	// HTTPClient fetches URL sources; a client with a 30-minute timeout
	// when nil.
	HTTPClient *http.Client
	// MaxRecordSize caps one OSV record file (default 4 MiB); MaxFeedSize
	// one CVE feed file (default 512 MiB); MaxSourceSize everything one
	// source expands to, and a URL's download (default 4 GiB).
	MaxRecordSize, MaxFeedSize, MaxSourceSize int64
	// TempDir holds downloads while they are imported (default: the
	// system's).
	TempDir string
	// RevisionCheck is how often Index asks the database for its revision
	// (default 1s); 0 uses the default, a negative value checks every time.
	RevisionCheck time.Duration
	// Clock is the time source (default time.Now).
	Clock func() time.Time
	// Owner names this process in import leases (default
	// host-pid-random); processes sharing a database need distinct names.
	Owner string
	// ImportLease is how long an import's lease of its source holds
	// without renewal (default 2m): a process that stops renewing it for
	// that long counts as dead, and its import may be run elsewhere.
	// ProgressEvery is how often a running import writes its progress to
	// the database and renews its lease (default 2s; less than
	// ImportLease).
	ImportLease, ProgressEvery time.Duration
	// ChangeLogRetention is how long the changes of a revision stay in the
	// change log AffectedSince reads; 0 keeps them forever. The log is
	// pruned after imports and override changes.
	ChangeLogRetention time.Duration
}

// Service is the vulnerability database. It is safe for concurrent use.
type Service struct {
	opts    Options
	st      Store
	log     *slog.Logger
	sources []Source

	importMu sync.Mutex // one import at a time per process
	progMu   sync.Mutex
	running  []*Progress

	// snap is the newest index built; readers load it without a lock.
	snap atomic.Pointer[snapshot]
	// idxMu guards checked (when the database's revision was last read)
	// and building (the index build under way, nil if none).
	idxMu    sync.Mutex
	checked  time.Time
	building *indexBuild

	// bg is the lifetime of background work (updates started by
	// StartUpdate, index builds); Close ends it. bgMu orders goBG with
	// Close.
	bg     context.Context
	stopBG context.CancelFunc
	bgMu   sync.Mutex
	closed bool
	bgWG   sync.WaitGroup
}

// Open returns a Service over opts.Store. Configured sources must have
// distinct names and locations.
func Open(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, apperr.Errorf(apperr.EINVALID, "vulndb: no store")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Minute}
	}
	if opts.MaxRecordSize <= 0 {
		opts.MaxRecordSize = DefaultMaxRecordSize
	}
	if opts.MaxFeedSize <= 0 {
		opts.MaxFeedSize = DefaultMaxFeedSize
	}
	if opts.MaxSourceSize <= 0 {
		opts.MaxSourceSize = DefaultMaxSourceSize
	}
	if opts.RevisionCheck == 0 {
		opts.RevisionCheck = DefaultRevisionCheck
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.ImportLease <= 0 {
		opts.ImportLease = DefaultImportLease
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = DefaultProgressEvery
	}
	if opts.ProgressEvery >= opts.ImportLease {
		return nil, apperr.Errorf(apperr.EINVALID, "vulndb: progress is written every %s, not within the import lease of %s",
			opts.ProgressEvery, opts.ImportLease)
	}
	if opts.ChangeLogRetention < 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "vulndb: change log retention %s is negative", opts.ChangeLogRetention)
	}
	if opts.Owner == "" {
		opts.Owner = defaultOwner()
	}
	s := &Service{opts: opts, st: opts.Store, log: opts.Logger}
	s.bg, s.stopBG = context.WithCancel(context.Background())
	names := map[string]bool{}
	locs := map[string]bool{}
	for _, src := range opts.Sources {
		src, err := normalize(src)
		if err != nil {
			return nil, err
		}
		if names[src.Name] {
			return nil, apperr.Errorf(apperr.EINVALID, "vulndb: two sources are named %q", src.Name)
		}
		if locs[src.Location] {
			return nil, apperr.Errorf(apperr.EINVALID, "vulndb: two sources read %s", src.Location)
		}
		names[src.Name], locs[src.Location] = true, true
		s.sources = append(s.sources, src)
	}
	return s, nil
}

// defaultOwner names this process: host, pid and a random part.
func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "customs"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Owner names this process in import leases.
func (s *Service) Owner() string { return s.opts.Owner }

// normalize makes a path location absolute and fills in a missing name.
func normalize(src Source) (Source, error) {
	if src.Location == "" {
		return src, apperr.Errorf(apperr.EINVALID, "vulndb source %q has no location (path or URL)", src.Name)
	}
	if !isURL(src.Location) {
		abs, err := filepath.Abs(src.Location)
		if err != nil {
			return src, apperr.Errorf(apperr.EINVALID, "vulndb source %q: %v", src.Location, err)
		}
		src.Location = abs
	}
	if src.Name == "" {
		src.Name = src.Location
	}
	return src, nil
}

// StartUpdate starts Update in the background and returns at once.
// ECONFLICT if this process is importing already, EINVALID if no source
// is configured. Running and Status show its progress; its outcome is
// logged and recorded per source.
func (s *Service) StartUpdate() error {
	if len(s.sources) == 0 {
		return apperr.Errorf(apperr.EINVALID, "no vulnerability sources are configured (vulndb.sources)")
	}
	if !s.importMu.TryLock() {
		return apperr.Errorf(apperr.ECONFLICT, "a vulnerability database import is already running")
	}
	started := s.goBG(func() {
		defer s.importMu.Unlock()
		if _, err := s.importLocked(s.bg, s.sources, time.Time{}); err != nil && s.bg.Err() == nil {
			s.log.Error("vulndb: update failed", "err", err)
		}
	})
	if !started {
		s.importMu.Unlock()
		return errClosing()
	}
	return nil
}

// errClosing is the error of work asked for after Close.
func errClosing() error {
	return apperr.Errorf(apperr.EUNAVAILABLE, "the vulnerability database is shutting down")
}

// goBG runs fn in a goroutine that Close waits for, unless Close was
// called: then it returns false and does not run fn.
func (s *Service) goBG(fn func()) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.closed {
		return false
	}
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		fn()
	}()
	return true
}

// Close cancels background work (updates started by StartUpdate, index
// builds) and waits for it to end.
func (s *Service) Close() {
	s.bgMu.Lock()
	s.closed = true
	s.bgMu.Unlock()
	s.stopBG()
	s.bgWG.Wait()
}

// Sources returns the configured sources.
func (s *Service) Sources() []Source { return append([]Source(nil), s.sources...) }
