package vulndb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// Result is what an import did with one source.
type Result struct {
	Source   string `json:"source"`
	Location string `json:"location"`
	// Unchanged is true when the URL answered 304 Not Modified.
	Unchanged bool `json:"unchanged,omitempty"`
	// Read counts the records read (and CVE ratings); Added, Updated and
	// Removed what the import changed.
	Read    int `json:"read"`
	Added   int `json:"added"`
	Updated int `json:"updated"`
	Removed int `json:"removed"`
	// Revision is the database revision after the import.
	Revision int64 `json:"revision"`
	// HeldBy names the process that was importing the source when this
	// import wanted to: nothing was read or written. Import and Update
	// report it as an ECONFLICT Err too; UpdateDue leaves the source to
	// that process without an error.
	HeldBy string `json:"heldBy,omitempty"`
	// Skipped are the bad records left out (their stored versions stay).
	Skipped []*RecordError `json:"-"`
	// Err is the source's failure: nothing of it was imported. nil on
	// success.
	Err      error         `json:"-"`
	Duration time.Duration `json:"duration"`
}

// Changed reports whether the import changed any record.
func (r Result) Changed() bool { return r.Added+r.Updated+r.Removed > 0 }

// Progress describes an import under way.
type Progress struct {
	Source   string    `json:"source"`
	Location string    `json:"location"`
	Started  time.Time `json:"started"`
	// Owner names the process running the import (Options.Owner).
	Owner string `json:"owner"`
	// UpdatedAt is when another process's import last wrote its progress
	// to the database (zero for this process's own imports, which are
	// shown as they are).
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
	// Phase is "downloading", "reading" or "writing".
	Phase string `json:"phase"`
	// Bytes counts the bytes downloaded so far (URL sources).
	Bytes int64 `json:"bytes,omitempty"`
	// Read counts the records read so far, Changed those new or changed,
	// Errors the bad ones.
	Read    int `json:"read"`
	Changed int `json:"changed"`
	Errors  int `json:"errors"`
}

// Running returns the imports this process is running now (Status shows
// those of every process sharing the database).
func (s *Service) Running() []Progress {
	s.progMu.Lock()
	defer s.progMu.Unlock()
	out := make([]Progress, len(s.running))
	for i, p := range s.running {
		out[i] = *p
	}
	return out
}

// update changes p under the progress lock.
func (s *Service) update(p *Progress, fn func(p *Progress)) {
	s.progMu.Lock()
	fn(p)
	s.progMu.Unlock()
}

// Update imports every configured source (see Import). EINVALID if none is
// configured.
func (s *Service) Update(ctx context.Context) ([]Result, error) {
	if len(s.sources) == 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "no vulnerability sources are configured (vulndb.sources)")
	}
	return s.Import(ctx, s.sources...)
}

// UpdateDue is the scheduled update, which every replica runs: it imports
// the configured sources that no process sharing the database attempted
// within every (or that were imported from another location). A source
// another process is importing is left to it (its Result has HeldBy and no
// Err), and so is one that another process attempted after UpdateDue read
// the sources. It returns the results of the sources it tried, none when
// nothing is due or this process is importing already. EINVALID if no
// source is configured.
func (s *Service) UpdateDue(ctx context.Context, every time.Duration) ([]Result, error) {
	if len(s.sources) == 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "no vulnerability sources are configured (vulndb.sources)")
	}
	if !s.importMu.TryLock() {
		return nil, nil
	}
	defer s.importMu.Unlock()
	dueBefore := s.opts.Clock().Add(-every)
	stored, err := s.st.VulnSources(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*store.VulnSource{}
	for i := range stored {
		byName[stored[i].Name] = &stored[i]
	}
	var due []Source
	for _, src := range s.sources {
		if isDue(byName[src.Name], src, dueBefore) {
			due = append(due, src)
		}
	}
	if len(due) == 0 {
		return nil, nil
	}
	return s.importLocked(ctx, due, dueBefore)
}

// isDue reports whether a scheduled update should import src, whose stored
// state is prev (nil if never imported): not attempted since dueBefore, or
// imported successfully from another location (a failure at the new
// location waits for the interval like any other).
func isDue(prev *store.VulnSource, src Source, dueBefore time.Time) bool {
	return prev == nil || prev.LastAttempt.Before(dueBefore) || (prev.Location != src.Location && prev.LastError == "")
}

// Busy reports whether this process is importing now.
func (s *Service) Busy() bool {
	if s.importMu.TryLock() {
		s.importMu.Unlock()
		return false
	}
	return true
}

// Import imports each source in turn, each in its own transaction, and
// returns one Result per source. A source without a name takes the name of
// the configured source at its location, or its location. The error joins
// the sources' failures (each Result says its own); bad records are not
// failures. Imports in one process run one at a time; a source that
// another process is importing is not imported again (Result.HeldBy).
// Once the revision changed, the change log is pruned (see
// Options.ChangeLogRetention) and, if this process uses an index, Import
// returns after its rebuild, so that Match reads what Import wrote.
func (s *Service) Import(ctx context.Context, srcs ...Source) ([]Result, error) {
	norm := make([]Source, len(srcs))
	for i, src := range srcs {
		n, err := normalize(src)
		if err != nil {
			return nil, err
		}
		if src.Name == "" {
			for _, c := range s.sources {
				if c.Location == n.Location {
					n.Name = c.Name
				}
			}
		}
		norm[i] = n
	}
	s.importMu.Lock()
	defer s.importMu.Unlock()
	return s.importLocked(ctx, norm, time.Time{})
}

// importLocked imports normalized sources; the caller holds importMu. A
// non-zero dueBefore makes it a scheduled update (see UpdateDue).
func (s *Service) importLocked(ctx context.Context, norm []Source, dueBefore time.Time) ([]Result, error) {
	results := make([]Result, 0, len(norm))
	var errs []error
	var rev int64
	defer func() {
		if rev > 0 {
			s.afterWrite(context.WithoutCancel(ctx), rev)
		}
	}()
	for _, src := range norm {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		r, tried := s.importSource(ctx, src, dueBefore)
		switch {
		case !tried:
			s.log.Debug("vulndb: source updated meanwhile by another process", "source", src.Name)
			continue
		case r.HeldBy != "":
			s.log.Info("vulndb: another process is importing the source; left to it", "source", r.Source, "owner", r.HeldBy)
			if dueBefore.IsZero() {
				errs = append(errs, r.Err) // asked for explicitly: say it was not done here
			} else {
				r.Err = nil
			}
		case r.Err != nil:
			errs = append(errs, r.Err)
			s.log.Warn("vulndb: import failed; the source's previous data stays", "source", r.Source, "err", r.Err)
		default:
			s.log.Info("vulndb: imported", "source", r.Source, "read", r.Read, "added", r.Added,
				"updated", r.Updated, "removed", r.Removed, "skipped", len(r.Skipped), "unchanged", r.Unchanged,
				"revision", r.Revision, "duration", r.Duration)
			if r.Changed() {
				rev = max(rev, r.Revision)
			}
		}
		results = append(results, r)
	}
	return results, errors.Join(errs...)
}

// afterWrite follows a change this process made that brought the database
// to revision rev: it prunes the change log and brings this process's
// index up to rev.
func (s *Service) afterWrite(ctx context.Context, rev int64) {
	if keep := s.opts.ChangeLogRetention; keep > 0 {
		before := s.opts.Clock().Add(-keep)
		if pruned, err := s.st.PruneVulnChanges(ctx, before); err != nil {
			s.log.Warn("vulndb: pruning the change log", "err", err)
		} else {
			s.log.Debug("vulndb: change log pruned", "through_revision", pruned, "older_than", before)
		}
	}
	s.refreshAfterWrite(ctx, rev)
}

// errLeaseLost ends an import whose lease another process took over.
var errLeaseLost = errors.New("lease lost")

// importSource runs one source's import under the source's lease and
// records a failed attempt. With a non-zero dueBefore it returns tried =
// false, doing nothing, if the source turns out to have been attempted
// since then (by another process, once it holds the lease).
func (s *Service) importSource(ctx context.Context, src Source, dueBefore time.Time) (r Result, tried bool) {
	start := s.opts.Clock()
	r = Result{Source: src.Name, Location: src.Location}
	run := &store.VulnImportRun{Source: src.Name, Location: src.Location, Owner: s.opts.Owner, Phase: "reading"}
	holder, err := s.st.ClaimVulnImport(ctx, run, s.opts.ImportLease)
	if err != nil {
		r.Err = err
		return r, true
	}
	if holder != nil {
		r.HeldBy = holder.Owner
		r.Err = apperr.Errorf(apperr.ECONFLICT, "vulnerability source %s is being imported by %s (since %s); its result will show in the status",
			src.Name, holder.Owner, holder.Started.UTC().Format(time.RFC3339))
		return r, true
	}
	defer func() {
		if err := s.st.ReleaseVulnImport(context.WithoutCancel(ctx), src.Name, s.opts.Owner); err != nil {
			s.log.Warn("vulndb: releasing an import lease (it expires by itself)", "source", src.Name, "err", err)
		}
	}()
	if !dueBefore.IsZero() {
		prev, err := s.sourceState(ctx, src.Name)
		if err != nil {
			r.Err = err
			return r, true
		}
		if !isDue(prev, src, dueBefore) {
			return r, false
		}
	}

	p := &Progress{Source: src.Name, Location: src.Location, Started: start, Owner: s.opts.Owner, Phase: "reading"}
	s.progMu.Lock()
	s.running = append(s.running, p)
	s.progMu.Unlock()
	defer func() {
		s.progMu.Lock()
		s.running = slices.DeleteFunc(s.running, func(q *Progress) bool { return q == p })
		s.progMu.Unlock()
	}()
	ictx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := s.heartbeat(ictx, cancel, run, p)

	err = s.read(ictx, src, p, &r)
	stop()
	r.Duration = s.opts.Clock().Sub(start)
	if err == nil {
		return r, true
	}
	var se *sourceError
	lost := errors.Is(context.Cause(ictx), errLeaseLost) && ctx.Err() == nil
	switch {
	case errors.As(err, &se):
		where := src.Name
		if src.Name != src.Location {
			where += " (" + src.Location + ")"
		}
		err = apperr.Errorf(apperr.EINVALID, "vulnerability source %s: %s", where, se.Error())
	case lost:
		r.Err = apperr.Errorf(apperr.ECONFLICT, "vulnerability source %s: import abandoned: its lease was taken over by another "+
			"process after this one could not renew it for %s", src.Name, s.opts.ImportLease)
		return r, true // that process records its own attempt
	case apperr.Code(err) == apperr.EINTERNAL && errors.Is(err, context.Canceled):
		err = apperr.Wrap(err, apperr.EUNAVAILABLE, "vulnerability source "+src.Name+": import cancelled")
	}
	r.Err = err
	// The attempt is recorded even when ctx ended the import.
	if aerr := s.st.RecordVulnAttempt(context.WithoutCancel(ctx), store.VulnAttempt{
		Source: src.Name, Location: src.Location, Err: apperr.Message(err)}); aerr != nil {
		s.log.Error("vulndb: recording a failed import", "source", src.Name, "err", aerr)
	}
	return r, true
}

// heartbeat writes p to the database as run's progress every
// Options.ProgressEvery, renewing run's lease, until stop is called or ctx
// ends. If the lease turns out to be held by another process, it cancels
// the import with errLeaseLost.
func (s *Service) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, run *store.VulnImportRun, p *Progress) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.opts.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s.progMu.Lock()
			run.Phase, run.Bytes = p.Phase, p.Bytes
			run.Read, run.Changed, run.Errors = int64(p.Read), int64(p.Changed), int64(p.Errors)
			s.progMu.Unlock()
			err := s.st.RenewVulnImport(ctx, run, s.opts.ImportLease)
			switch {
			case apperr.Is(err, apperr.ECONFLICT):
				s.log.Warn("vulndb: another process took over the import of the source; abandoning it", "source", run.Source)
				cancel(errLeaseLost)
				return
			case err != nil && ctx.Err() == nil:
				s.log.Warn("vulndb: writing import progress", "source", run.Source, "err", err)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// read reads src and imports what it holds.
func (s *Service) read(ctx context.Context, src Source, p *Progress, r *Result) error {
	// The stored hashes are read once the source turns out to have
	// changed (its first file), not for an unchanged one.
	var c *collector
	collect := func() (*collector, error) {
		if c != nil {
			return c, nil
		}
		stored, err := s.st.VulnHashes(ctx, src.Name)
		if err != nil {
			return nil, err
		}
		c = newCollector(src.Name, stored, func(read, changed, errs int) {
			s.update(p, func(p *Progress) { p.Read, p.Changed, p.Errors = read, changed, errs })
		})
		return c, nil
	}
	w := &walker{
		lim: limits{record: s.opts.MaxRecordSize, feed: s.opts.MaxFeedSize, total: s.opts.MaxSourceSize},
		file: func(name string, data []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			c, err := collect()
			if err != nil {
				return err
			}
			return c.file(name, data)
		},
		recErr: func(name string, err error) {
			if c, cerr := collect(); cerr == nil {
				c.recordErr(name, "", err)
			}
		},
	}
	imp := &store.VulnImport{Source: src.Name, Location: src.Location}
	prev, err := s.sourceState(ctx, src.Name)
	if err != nil {
		return err
	}
	if prev != nil && (prev.Location != src.Location || src.Force) {
		prev = nil // validators are only good for the location they came from
	}
	var unchanged bool
	if isURL(src.Location) {
		unchanged, err = s.fetch(ctx, src, prev, p, w, imp)
	} else {
		unchanged, err = readPath(w, src.Location, prev, imp)
	}
	if err != nil {
		return err
	}
	if unchanged {
		r.Unchanged = true
		st, err := s.st.VulnState(ctx)
		if err != nil {
			return err
		}
		r.Revision = st.Revision
		return s.st.RecordVulnAttempt(ctx, store.VulnAttempt{Source: src.Name, Location: src.Location})
	}
	if _, err := collect(); err != nil {
		return err
	}
	records := c.finish()
	r.Read, r.Skipped = c.read, c.errs
	good := 0
	for _, h := range c.seen {
		if h != "" {
			good++
		}
	}
	if good == 0 && len(c.errs) > 0 {
		return sourceErrorf("%s: no readable record (%d bad ones; the first: %v)", src.Location, len(c.errs), c.errs[0].Err)
	}
	imp.Seen, imp.Records = c.seen, records
	s.update(p, func(p *Progress) { p.Phase = "writing" })
	res, err := s.st.ImportVulns(ctx, imp)
	if err != nil {
		return err
	}
	r.Added, r.Updated, r.Removed, r.Revision = res.Added, res.Updated, res.Removed, res.Revision
	return nil
}

// readPath reads a local source: a directory, a zip archive or a file.
// A file's validator is the SHA-256 of its content, kept as the source's
// ETag: a file whose content matches prev's is unchanged and not read.
func readPath(w *walker, loc string, prev *store.VulnSource, imp *store.VulnImport) (unchanged bool, err error) {
	st, err := os.Stat(loc)
	if err != nil {
		return false, sourceErrorf("%w", err)
	}
	if st.IsDir() {
		return false, w.readDir(loc)
	}
	f, err := os.Open(loc)
	if err != nil {
		return false, sourceErrorf("%w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, sourceErrorf("%s: %w", filepath.Base(loc), err)
	}
	imp.ETag = "sha256:" + hex.EncodeToString(h.Sum(nil))
	if prev != nil && prev.ETag == imp.ETag {
		return true, nil
	}
	if isZip(loc) {
		return false, w.readZipFile(filepath.Base(loc), "", loc)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, sourceErrorf("%s: %w", filepath.Base(loc), err)
	}
	return false, w.readFile(filepath.Base(loc), f)
}

// zipMagic starts every zip archive (a local file header).
var zipMagic = []byte("PK\x03\x04")

// fetch downloads a URL source with a conditional request into a temporary
// file and reads it (a zip archive or one record or feed file). It reports
// unchanged for 304 Not Modified; imp gets the response's validators.
func (s *Service) fetch(ctx context.Context, src Source, prev *store.VulnSource, p *Progress, w *walker, imp *store.VulnImport) (unchanged bool, err error) {
	s.update(p, func(p *Progress) { p.Phase = "downloading" })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.Location, nil)
	if err != nil {
		return false, sourceErrorf("%s: %w", src.Location, err)
	}
	if prev != nil {
		if prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, sourceErrorf("GET %s: %w", src.Location, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return true, nil
	case resp.StatusCode != http.StatusOK:
		return false, sourceErrorf("GET %s: %s", src.Location, resp.Status)
	}
	imp.ETag, imp.LastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")

	tmp, err := os.CreateTemp(s.opts.TempDir, "customs-vulndb-*")
	if err != nil {
		return false, fmt.Errorf("vulndb: creating a temporary file for %s: %w", src.Location, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	n, err := io.Copy(tmp, &countingReader{r: io.LimitReader(resp.Body, s.opts.MaxSourceSize+1), add: func(n int) {
		s.update(p, func(p *Progress) { p.Bytes += int64(n) })
	}})
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, sourceErrorf("GET %s: reading the body: %w", src.Location, err)
	}
	if n > s.opts.MaxSourceSize {
		return false, sourceErrorf("GET %s: the body is larger than %d bytes (vulndb.maxSourceSize)", src.Location, s.opts.MaxSourceSize)
	}
	s.update(p, func(p *Progress) { p.Phase = "reading" })
	head := make([]byte, len(zipMagic))
	if _, err := tmp.ReadAt(head, 0); err == nil && bytes.Equal(head, zipMagic) {
		return false, w.readZip(path.Base(req.URL.Path), "", tmp, n)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	// One record or feed: its name (for the YAML check) is the URL's.
	name := path.Base(req.URL.Path)
	if name == "." || name == "/" {
		name = src.Location
	}
	return false, w.readFile(name, tmp)
}

// sourceState returns the stored state of the named source, nil if new.
func (s *Service) sourceState(ctx context.Context, name string) (*store.VulnSource, error) {
	srcs, err := s.st.VulnSources(ctx)
	if err != nil {
		return nil, err
	}
	for i := range srcs {
		if srcs[i].Name == name {
			return &srcs[i], nil
		}
	}
	return nil, nil
}

// countingReader reports how many bytes pass through it.
type countingReader struct {
	r   io.Reader
	add func(n int)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.add(n)
	}
	return n, err
}
