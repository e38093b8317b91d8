package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

// rowKind is the operation a row measures.
type rowKind string

// The operations the benchmark measures.
const (
	rowPush rowKind = "push"
	rowPull rowKind = "pull"
	rowHead rowKind = "HEAD manifest"
	rowGet  rowKind = "GET manifest"
)

// row is one line of the report: an operation at a size and concurrency, with
// each server's result by label.
type row struct {
	kind    rowKind
	size    int64 // blob size; 0 for manifest rows
	conc    int
	ops     int
	results map[string][]result // per server label, one result per round
}

// newRow returns an empty row.
func newRow(kind rowKind, size int64, conc, ops int) *row {
	return &row{kind: kind, size: size, conc: conc, ops: ops, results: map[string][]result{}}
}

// summary returns the label's figures over its rounds (ok false if none).
func (r *row) summary(label string) (summary, bool) {
	return summarize(r.results[label])
}

// name is the row's label in the report, e.g. "push 64 MiB ×8".
func (r *row) name() string {
	if r.size > 0 {
		return fmt.Sprintf("%s %s ×%d", r.kind, formatSize(r.size), r.conc)
	}
	return fmt.Sprintf("%s ×%d", r.kind, r.conc)
}

// plan is everything one benchmark run does.
type plan struct {
	servers      []serverSpec
	sizes        []int64
	concs        []int
	blobs        bool  // run the blob push/pull rows
	manifests    bool  // run the manifest HEAD/GET rows
	opsOverride  int   // >0: operations per blob row, instead of opsFor
	quick        bool  // fewer operations per row
	rounds       int   // times each row runs per server, alternating servers
	roundBytes   int64 // fewer rounds for rows pushing more than this per round
	maxRowBytes  int64 // cap on bytes pushed per blob row and server
	manifestReqs int   // requests per manifest row
	workDir      string
	cred         credentials
	digests      *digester
	disk         *diskResult // when set, measured before each round of push 1 GiB ×1
	memoryMode   memoryMode  // how memory is prepared before the disk baseline's and the disk-target row's timed writes
	memory       *memoryPrep // prepares memory before the baseline's and the disk-target row's timed writes; nil: nothing
	log          io.Writer   // progress lines
	started      time.Time   // start of the run, for progress lines
}

// opsFor returns how many blobs a push row of size at conc moves: enough for
// stable percentiles on small blobs, at least one per worker on large ones,
// and never more than maxRowBytes.
func (p *plan) opsFor(size int64, conc int) int {
	var n int
	switch {
	case p.opsOverride > 0:
		n = p.opsOverride
	case p.quick:
		n = max(64, 2*conc)
	case size <= 4<<20:
		n = max(256, 16*conc)
	case size <= 256<<20:
		n = max(8, 2*conc)
	default:
		n = max(2, conc)
	}
	if p.maxRowBytes > 0 {
		n = min(n, int(max(1, p.maxRowBytes/size)))
	}
	return n
}

// roundsFor returns how many rounds a blob row of n blobs of size gets: the
// configured number, reduced so that rounds × row bytes stays within
// roundBytes, and at least one.
func (p *plan) roundsFor(size int64, n int) int {
	r := max(1, p.rounds)
	if p.roundBytes > 0 {
		r = min(r, int(p.roundBytes/(size*int64(n))))
	}
	return max(1, r)
}

// serverOrder alternates which server goes first from group to group, so
// neither always runs on a disk still settling from the other.
func (p *plan) serverOrder(group int) []serverSpec {
	s := slices.Clone(p.servers)
	if group%2 == 1 {
		slices.Reverse(s)
	}
	return s
}

// clients authenticates n workers to srv over one connection pool: the first
// alone, the rest in parallel. Like `docker login` before parallel layer
// pushes, this lets the server's credential cache answer all but the first,
// instead of a burst of concurrent password hashes landing in the next row's
// memory figures.
func clients(ctx context.Context, srv *server, base *http.Transport, n int, cred credentials, repos ...string) ([]*client, error) {
	first, err := newClient(ctx, base, srv.addr, cred, repos...)
	if err != nil {
		return nil, err
	}
	out := []*client{first}
	rest := make([]*client, n-1)
	errs := make(chan error, n)
	for i := range rest {
		go func() {
			var err error
			rest[i], err = newClient(ctx, base, srv.addr, cred, repos...)
			errs <- err
		}()
	}
	for range rest {
		if err := <-errs; err != nil {
			return nil, err
		}
	}
	return append(out, rest...), nil
}

// measured runs fn while sampling srv's RSS and adds the result to r. With
// prepare set (only for rows at concurrency 1) the operations run one after
// the other, each after an untimed call of prepare.
func (p *plan) measured(ctx context.Context, srv *server, r *row, prepare func() error, fn opFunc) error {
	fmt.Fprintf(p.log, "[%6.1fs] %-24s %-16s round %d\n", time.Since(p.started).Seconds(), r.name(), srv.spec.label, len(r.results[srv.spec.label])+1)
	rss := startRSS(srv.pid(), 20*time.Millisecond)
	var res result
	var err error
	if prepare != nil && r.conc == 1 {
		res, err = runPrepared(ctx, r.ops, prepare, fn)
	} else {
		res, err = runOps(ctx, r.conc, r.ops, fn)
	}
	res.peakRSS, res.cpu = rss.finish()
	if err != nil {
		return fmt.Errorf("%s against %s: %w", r.name(), srv.spec.label, err)
	}
	if err := srv.alive(); err != nil {
		return err
	}
	r.results[srv.spec.label] = append(r.results[srv.spec.label], res)
	fmt.Fprintf(p.log, "           %s, p50 %s, p99 %s, peak RSS %s, server CPU %s\n", formatRate(res.rate(), r.size > 0),
		formatDur(res.percentile(0.5)), formatDur(res.percentile(0.99)), formatRSS(res.peakRSS), formatDur(res.cpu))
	return nil
}

// checkFreeSpace fails if dir's filesystem cannot hold need bytes plus a margin.
func checkFreeSpace(dir string, need int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err
	}
	avail := int64(st.Bavail) * int64(st.Bsize)
	if want := need + need/10 + 1<<30; avail < want {
		return fmt.Errorf("%s has %s free, a row needs %s: lower -max-row-bytes", dir, formatSize(avail), formatSize(want))
	}
	return nil
}

// runBlobGroup pushes then pulls the blobs of one (size, concurrency) pair,
// for roundsFor rounds of blobRound, measuring the disk baseline before each
// round of the disk-target row.
func (p *plan) runBlobGroup(ctx context.Context, group int, size int64, conc int) ([]*row, error) {
	n := p.opsFor(size, conc)
	fmt.Fprintf(p.log, "preparing %d blobs of %s (digests)\n", n, formatSize(size))
	specs, err := p.digests.blobs(size, n, 2)
	if err != nil {
		return nil, err
	}
	warm, err := p.digests.blobs(4096, 1, 1)
	if err != nil {
		return nil, err
	}
	push := newRow(rowPush, size, conc, n)
	pull := newRow(rowPull, size, conc, n)
	rounds := p.roundsFor(size, n)
	for round := range rounds {
		if p.disk != nil && size == diskTargetSize && conc == 1 {
			fmt.Fprintf(p.log, "[%6.1fs] disk baseline: %s sequential write + fsync\n", time.Since(p.started).Seconds(), formatSize(size))
			d, err := measureDisk(p.workDir, size, 1, p.memory.prepare)
			if err != nil {
				return nil, err
			}
			p.disk.runs = append(p.disk.runs, d.runs...)
			p.disk.direct = append(p.disk.direct, d.direct...)
			bare, err := measureBarePush(p.workDir, size, p.memory.prepare)
			if err != nil {
				return nil, err
			}
			p.disk.bare = append(p.disk.bare, bare)
		}
		if err := p.blobRound(ctx, group+round, push, pull, specs, warm[0]); err != nil {
			return nil, err
		}
	}
	return []*row{push, pull}, nil
}

// blobRound runs one round of a push and a pull row: on each server in turn,
// a fresh start, the timed push, the timed pull, a verification, removal.
func (p *plan) blobRound(ctx context.Context, order int, push, pull *row, specs []blobSpec, warm blobSpec) error {
	n, conc, size := push.ops, push.conc, push.size
	for _, spec := range p.serverOrder(order) {
		if err := checkFreeSpace(p.workDir, int64(n)*size); err != nil {
			return err
		}
		err := p.withServer(ctx, spec, func(srv *server) error {
			base := newBaseTransport(conc)
			defer base.CloseIdleConnections()
			cls, err := clients(ctx, srv, base, min(conc, n), p.cred, blobRepo)
			if err != nil {
				return err
			}
			buf := make([][]byte, len(cls))
			for i := range buf {
				buf[i] = make([]byte, 256<<10)
			}
			// Untimed warm-up: one small push and pull through the whole path.
			if err := cls[0].pushBlob(ctx, blobRepo, warm); err != nil {
				return fmt.Errorf("warm-up push to %s: %w", spec.label, err)
			}
			if err := cls[0].pullBlob(ctx, blobRepo, warm, buf[0], true); err != nil {
				return fmt.Errorf("warm-up pull from %s: %w", spec.label, err)
			}
			// The disk-target row's pushes meet memory as the baseline does.
			var prepare func() error
			if p.memory != nil && size == diskTargetSize && conc == 1 {
				prepare = p.memory.prepare
			}
			if err := p.measured(ctx, srv, push, prepare, func(ctx context.Context, w, i int) (int64, error) {
				return specs[i].size, cls[w].pushBlob(ctx, blobRepo, specs[i])
			}); err != nil {
				return err
			}
			// Fresh tokens for the pull: a long push may have used up most of
			// their lifetime, and a refresh inside the timed section is noise.
			if cls, err = clients(ctx, srv, base, min(conc, n), p.cred, blobRepo); err != nil {
				return err
			}
			if err := p.measured(ctx, srv, pull, nil, func(ctx context.Context, w, i int) (int64, error) {
				return specs[i].size, cls[w].pullBlob(ctx, blobRepo, specs[i], buf[w], false)
			}); err != nil {
				return err
			}
			// Untimed check that what was stored is what was sent.
			for _, i := range []int{0, n - 1} {
				if err := cls[0].pullBlob(ctx, blobRepo, specs[i], buf[0], true); err != nil {
					return fmt.Errorf("verify pull from %s: %w", spec.label, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// withServer starts spec fresh, runs fn, then stops it and removes its data.
func (p *plan) withServer(ctx context.Context, spec serverSpec, fn func(*server) error) error {
	srv, err := startServer(ctx, spec, p.workDir, p.cred)
	if err != nil {
		return err
	}
	err = fn(srv)
	if rerr := srv.remove(); err == nil {
		err = rerr
	}
	return err
}

// imageManifest builds a small OCI image manifest over a config and a
// generated 32 KiB layer, returning the manifest, the config and the layer.
func (p *plan) imageManifest() (manifest, config []byte, layer blobSpec, err error) {
	layers, err := p.digests.blobs(32<<10, 1, 1)
	if err != nil {
		return nil, nil, blobSpec{}, err
	}
	layer = layers[0]
	config = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + layer.digest.String() + `"]}}`)
	type desc struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int64         `json:"size"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.manifest.v1+json",
		Config:        desc{"application/vnd.oci.image.config.v1+json", digest.FromBytes(config), int64(len(config))},
		Layers:        []desc{{"application/vnd.oci.image.layer.v1.tar", layer.digest, layer.size}},
	}
	manifest, err = json.Marshal(m)
	return manifest, config, layer, err
}

// runManifestGroup pushes one image per server and then measures HEAD and GET
// of its manifest by tag at every concurrency, on one fresh server each.
func (p *plan) runManifestGroup(ctx context.Context, group int) ([]*row, error) {
	manifest, config, layer, err := p.imageManifest()
	if err != nil {
		return nil, err
	}
	mDigest := digest.FromBytes(manifest)

	var rows []*row
	for _, kind := range []rowKind{rowHead, rowGet} {
		for _, c := range p.concs {
			rows = append(rows, newRow(kind, 0, c, p.manifestReqs))
		}
	}
	maxConc := slices.Max(p.concs)
	for round := range max(1, p.rounds) {
		for _, spec := range p.serverOrder(group + round) {
			err := p.withServer(ctx, spec, func(srv *server) error {
				base := newBaseTransport(maxConc)
				defer base.CloseIdleConnections()
				cls, err := clients(ctx, srv, base, maxConc, p.cred, manifestRepo)
				if err != nil {
					return err
				}
				c := cls[0]
				if err := c.pushBody(ctx, manifestRepo, digest.FromBytes(config), int64(len(config)), bytes.NewReader(config)); err != nil {
					return fmt.Errorf("push config to %s: %w", spec.label, err)
				}
				if err := c.pushBlob(ctx, manifestRepo, layer); err != nil {
					return fmt.Errorf("push layer to %s: %w", spec.label, err)
				}
				if _, err := c.putManifest(ctx, manifestRepo, manifestTag, "application/vnd.oci.image.manifest.v1+json", manifest); err != nil {
					return fmt.Errorf("push manifest to %s: %w", spec.label, err)
				}
				for _, r := range rows {
					method := http.MethodHead
					if r.kind == rowGet {
						method = http.MethodGet
					}
					// Untimed warm-up request on this row's method.
					if err := c.manifestRequest(ctx, method, manifestRepo, manifestTag, mDigest, int64(len(manifest))); err != nil {
						return fmt.Errorf("%s against %s: %w", r.name(), spec.label, err)
					}
					if err := p.measured(ctx, srv, r, nil, func(ctx context.Context, w, i int) (int64, error) {
						return 0, cls[w].manifestRequest(ctx, method, manifestRepo, manifestTag, mDigest, int64(len(manifest)))
					}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return rows, nil
}
