package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/scan/layers"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
)

// outcome is how a run of a job ended.
type outcome struct {
	// status is store.ScanDone, ScanFailed or ScanUnsupported for a final
	// end; "" asks for a retry (err says why) or, with wait, a deferral.
	status string
	err    error
	wait   time.Duration
	// report, for a final failure of a manifest job, says whether a
	// failed report is written (not when the manifest is gone).
	report bool
}

func done() outcome                    { return outcome{status: store.ScanDone} }
func retry(err error) outcome          { return outcome{err: err} }
func deferFor(d time.Duration) outcome { return outcome{wait: d} }

// final ends a job with the status err calls for: unsupported content,
// bad content (failed, not retried), or a retry for anything else.
func final(err error) outcome {
	switch permanence(err) {
	case store.ScanUnsupported:
		return outcome{status: store.ScanUnsupported, err: err, report: true}
	case store.ScanFailed:
		return outcome{status: store.ScanFailed, err: err, report: true}
	}
	return retry(err)
}

// permanence says whether err ends a scan for good: ScanUnsupported for
// content customs cannot scan, ScanFailed for content that is bad (corrupt,
// hostile, over the limits, missing), "" for errors worth retrying.
func permanence(err error) string {
	switch {
	case apperr.Is(err, apperr.EUNSUPPORTED):
		return store.ScanUnsupported
	case errors.Is(err, layers.ErrCorrupt), errors.Is(err, layers.ErrTooLarge), errors.Is(err, layers.ErrUnsafePath),
		errors.Is(err, layers.ErrDigestMismatch),
		apperr.Is(err, apperr.EINVALID), apperr.Is(err, apperr.ETOOLARGE), apperr.Is(err, apperr.ENOTFOUND):
		return store.ScanFailed
	}
	return ""
}

// RunOne claims one due job and runs it. It reports whether there was one;
// the error is the claim's (a job's failure is recorded with the job).
func (s *Scanner) RunOne(ctx context.Context) (bool, error) {
	j, err := s.st.ClaimScanJob(ctx, s.opts.Owner, s.opts.Lease)
	if err != nil || j == nil {
		return false, err
	}
	s.runJob(ctx, j)
	return true, nil
}

// heartbeat renews a job's lease and publishes its stage until stopped; it
// cancels the job when the lease is lost. It writes at most once a second:
// when the stage changed, or when a quarter of the lease passed.
type heartbeat struct {
	mu    sync.Mutex
	stage string
	lost  bool
	stop  chan struct{}
	done  chan struct{}
}

// heartbeatTick is how often a heartbeat looks for a stage to publish.
const heartbeatTick = time.Second

func (s *Scanner) startHeartbeat(ctx context.Context, j *store.ScanJob, cancel context.CancelFunc) *heartbeat {
	hb := &heartbeat{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(hb.done)
		t := time.NewTicker(min(heartbeatTick, s.opts.Lease/4))
		defer t.Stop()
		published, last := "", time.Now()
		for {
			select {
			case <-hb.stop:
				return
			case <-t.C:
			}
			hb.mu.Lock()
			stage := hb.stage
			hb.mu.Unlock()
			if stage == published && time.Since(last) < s.opts.Lease/4 {
				continue
			}
			err := s.st.RenewScanJob(context.WithoutCancel(ctx), j.ID, s.opts.Owner, stage, s.opts.Lease)
			if apperr.Is(err, apperr.ECONFLICT) {
				hb.mu.Lock()
				hb.lost = true
				hb.mu.Unlock()
				s.log.Warn("scan: lost the lease of a job; abandoning it", "job", j.ID, "subject", j.Subject)
				cancel()
				return
			}
			if err != nil {
				s.log.Warn("scan: renewing a job's lease failed", "job", j.ID, "err", err)
				continue
			}
			published, last = stage, time.Now()
		}
	}()
	return hb
}

// setStage records what the job is doing now; the heartbeat publishes it.
func (hb *heartbeat) setStage(stage string) {
	hb.mu.Lock()
	hb.stage = stage
	hb.mu.Unlock()
}

// end stops the heartbeat and reports whether the lease was lost.
func (hb *heartbeat) end() bool {
	close(hb.stop)
	<-hb.done
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return hb.lost
}

// runJob runs claimed job j and records how it ended.
func (s *Scanner) runJob(ctx context.Context, j *store.ScanJob) {
	log := s.log.With("job", j.ID, "kind", j.Kind, "subject", j.Subject, "attempt", j.Attempts)
	start := time.Now()
	jobCtx, cancel := context.WithTimeout(ctx, s.opts.JobTimeout)
	defer cancel()
	hb := s.startHeartbeat(jobCtx, j, cancel)
	var out outcome
	if j.Attempts > s.opts.MaxAttempts {
		out = outcome{status: store.ScanFailed, report: j.Kind == store.ScanJobManifest,
			err: fmt.Errorf("gave up after %d attempts; the last one failed with: %s", s.opts.MaxAttempts, j.LastError)}
	} else {
		out = s.run(jobCtx, j, hb.setStage)
	}
	lost := hb.end()
	s.metrics.duration.WithLabelValues(j.Kind).Observe(time.Since(start).Seconds())
	if lost {
		s.metrics.jobs.WithLabelValues(j.Kind, "lease-lost").Inc()
		return
	}
	// The record must be written even when ctx was cancelled (shutdown).
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer fcancel()
	if ctx.Err() != nil && out.status == "" {
		// Shutdown cut the run off: queue it again at once, not as an attempt.
		s.finish(fctx, log, j, store.ScanJobResult{Status: store.ScanQueued, Defer: true, RunAfter: s.now()}, "interrupted")
		return
	}
	if out.status == "" && out.wait > 0 {
		s.finish(fctx, log, j, store.ScanJobResult{Status: store.ScanQueued, Defer: true, RunAfter: s.now().Add(out.wait)}, "deferred")
		return
	}
	if out.status == "" && jobCtx.Err() != nil && out.err != nil {
		out.err = fmt.Errorf("timed out after %s: %w", s.opts.JobTimeout, out.err)
	}
	if out.status == "" {
		if j.Attempts >= s.opts.MaxAttempts {
			out = outcome{status: store.ScanFailed, report: j.Kind == store.ScanJobManifest,
				err: fmt.Errorf("gave up after %d attempts: %w", j.Attempts, out.err)}
		} else {
			wait := s.backoff(j.Attempts)
			log.Warn("scan: job failed; retrying", "err", out.err, "retry_in", wait)
			s.finish(fctx, log, j, store.ScanJobResult{Status: store.ScanQueued, Error: out.err.Error(), RunAfter: s.now().Add(wait)}, "retried")
			return
		}
	}
	msg := ""
	if out.err != nil {
		msg = out.err.Error()
		log.Warn("scan: job ended without a result", "status", out.status, "err", out.err)
		if out.report {
			if err := s.writeFailure(fctx, j.Subject, out.status, msg); err != nil {
				log.Error("scan: writing the failed report failed", "err", err)
			}
		}
	} else {
		log.Info("scan: job done", "duration", time.Since(start).Round(time.Millisecond))
	}
	s.finish(fctx, log, j, store.ScanJobResult{Status: out.status, Error: msg}, out.status)
}

// backoff is the wait before the retry that follows attempt n.
func (s *Scanner) backoff(n int) time.Duration {
	d := s.opts.RetryBackoff
	for i := 1; i < n && d < s.opts.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, s.opts.MaxRetryBackoff)
}

func (s *Scanner) finish(ctx context.Context, log *slog.Logger, j *store.ScanJob, r store.ScanJobResult, label string) {
	s.metrics.jobs.WithLabelValues(j.Kind, label).Inc()
	if err := s.st.FinishScanJob(ctx, j.ID, s.opts.Owner, r); err != nil {
		// The lease will expire and another run will do the work again.
		log.Error("scan: recording the end of a job failed", "status", r.Status, "err", err)
	}
}

// run dispatches j by kind.
func (s *Scanner) run(ctx context.Context, j *store.ScanJob, stage func(string)) outcome {
	switch j.Kind {
	case store.ScanJobManifest:
		return s.runManifest(ctx, j, stage)
	case store.ScanJobRematch:
		return s.runRematch(ctx, stage)
	}
	return outcome{status: store.ScanFailed, err: fmt.Errorf("unknown job kind %q", j.Kind)}
}

// runManifest scans the manifest j names.
func (s *Scanner) runManifest(ctx context.Context, j *store.ScanJob, stage func(string)) outcome {
	d, err := digest.Parse(j.Subject)
	if err != nil {
		return outcome{status: store.ScanFailed, err: fmt.Errorf("job subject %q is not a digest: %w", j.Subject, err)}
	}
	stage("reading the manifest")
	m, repo, err := s.findManifest(ctx, j.Repository, d)
	if err != nil {
		if apperr.Is(err, apperr.ENOTFOUND) {
			return outcome{status: store.ScanFailed, err: err}
		}
		return retry(err)
	}
	raw, err := s.readBlob(ctx, d, readManifest, s.opts.MaxManifestBytes)
	if err != nil {
		return final(err)
	}
	switch {
	case isIndex(m.MediaType):
		return s.runIndex(ctx, repo, m, raw, stage)
	case isImage(m.MediaType):
		return s.runImage(ctx, m, raw, stage)
	}
	return final(apperr.Errorf(apperr.EUNSUPPORTED, "manifest media type %q is not an image manifest or index", m.MediaType))
}

// findManifest returns manifest d from repo, or from another repository
// holding it when repo no longer does. ENOTFOUND when none does.
func (s *Scanner) findManifest(ctx context.Context, repo string, d digest.Digest) (*store.Manifest, string, error) {
	m, err := s.st.Manifest(ctx, repo, d)
	if err == nil || !apperr.Is(err, apperr.ENOTFOUND) {
		return m, repo, err
	}
	repos, err := s.st.ManifestRepositories(ctx, d.String(), 1)
	if err != nil {
		return nil, "", err
	}
	if len(repos) == 0 {
		return nil, "", apperr.Errorf(apperr.ENOTFOUND, "manifest %s is no longer stored in any repository", d)
	}
	m, err = s.st.Manifest(ctx, repos[0], d)
	return m, repos[0], err
}

// runImage inventories and matches an image manifest.
func (s *Scanner) runImage(ctx context.Context, m *store.Manifest, raw []byte, stage func(string)) outcome {
	mf, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return final(apperr.Errorf(apperr.EINVALID, "manifest %s cannot be parsed: %v", m.Digest, err))
	}
	if !imageConfigTypes[mf.Config.MediaType] {
		kind := m.ArtifactType
		if kind == "" {
			kind = string(mf.Config.MediaType)
		}
		return final(apperr.Errorf(apperr.EUNSUPPORTED, "artifact of type %q is not a container image", kind))
	}
	cd, err := digest.Parse(mf.Config.Digest.String())
	if err != nil {
		return final(apperr.Errorf(apperr.EINVALID, "config digest %q: %v", mf.Config.Digest, err))
	}
	cfgRaw, err := s.readBlob(ctx, cd, readConfig, s.opts.MaxConfigBytes)
	if err != nil {
		return final(err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
	if err != nil {
		return final(apperr.Errorf(apperr.EINVALID, "image config %s cannot be parsed: %v", cd, err))
	}
	platform := platformString(cf.Platform())
	img, err := partial.CompressedToImage(&storedImage{s: s, ctx: ctx, mediaType: types.MediaType(m.MediaType),
		raw: raw, config: cfgRaw, manifest: mf})
	if err != nil {
		return final(apperr.Errorf(apperr.EINVALID, "image %s: %v", m.Digest, err))
	}
	stage(fmt.Sprintf("reading %d layers", len(mf.Layers)))
	inv, err := s.x.Image(ctx, img)
	if err != nil {
		return final(err)
	}
	stage("matching")
	key := store.InventoryKey{Digest: m.Digest.String(), Platform: platform}
	if err := s.vdb.PutInventory(ctx, key, inv); err != nil {
		return retry(fmt.Errorf("storing the inventory: %w", err))
	}
	res, err := s.vdb.Match(ctx, inv)
	if err != nil {
		return retry(fmt.Errorf("matching: %w", err))
	}
	now := s.now()
	rep := &report.Report{
		Digest: m.Digest.String(), MediaType: m.MediaType, Platform: platform, Status: report.StatusDone,
		VulnDBRevision: res.Revision, ScannedAt: now, MatchedAt: now, Distro: inv.Distro, Packages: len(inv.Packages),
		Findings: findingsOf(res.Findings),
	}
	if err := s.saveReport(ctx, rep); err != nil {
		return retry(fmt.Errorf("saving the report: %w", err))
	}
	s.refreshIndexes(ctx, m.Digest.String())
	if s.opts.BlobWriter != nil {
		// The report stands whatever happens here: a failure is logged,
		// and the next scan of the image tries again.
		stage("storing the SBOM referrer")
		if n, err := s.pushSBOM(ctx, m, rep, inv); err != nil {
			s.metrics.sboms.WithLabelValues("error").Inc()
			s.log.Warn("scan: storing the SBOM referrer failed", "digest", m.Digest, "err", err)
		} else if n > 0 {
			s.metrics.sboms.WithLabelValues("stored").Add(float64(n))
		}
	}
	return done()
}
