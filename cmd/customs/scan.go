package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/scan/extract"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/vulndb"
)

// Exit codes of customs scan.
const (
	scanExitFindings = 1 // --fail-on met
	scanExitError    = 2 // anything else went wrong
)

// exitError carries a command's exit code to main; err (if any) is
// printed as usual.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// errorText is err for people: its text, where an application error in
// the chain shows its message without its code ("EINVALID: ").
func errorText(err error) string {
	full := err.Error()
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Message == "" || !strings.HasSuffix(full, ae.Error()) {
		return full
	}
	msg := ae.Message
	if ae.Err != nil {
		msg += ": " + ae.Err.Error()
	}
	return strings.TrimSuffix(full, ae.Error()) + msg
}

// scanError makes err a scan error (exit 2), unless it already carries a
// code.
func scanError(err error) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return &exitError{code: scanExitError, err: err}
}

// scanFlags are the options of customs scan.
type scanFlags struct {
	format        string
	output        string
	failOn        string
	ignoreUnfixed bool
	vulndbPaths   []string
	platform      string
	insecure      bool
	plainHTTP     bool
	quiet         bool
}

const scanLong = `Scan an image for vulnerable packages and print a report: inventory its
layers (OS packages of dpkg, apk and rpm; Go and Rust binaries; npm, Python,
Java, Ruby and .NET packages), match the inventory against the
vulnerability database, and write every finding with its fix.

TARGET is, in this order:
  - a directory holding an OCI image layout (an oci-layout file): the image
    of its index.json, which must then hold one image, or DIR:TAG for the
    one whose org.opencontainers.image.ref.name is TAG;
  - a file: a "docker save" tar (FILE:REPO:TAG picks one of several images);
  - any other directory: a root filesystem, scanned as one layer;
  - anything else: an image reference, pulled from its registry with the
    credentials of "customs login" (for a customs server) or of the Docker
    config (docker login, credential helpers). --plain-http allows plain
    HTTP, --insecure accepts any TLS certificate.
An image index is resolved to --platform (default linux/` + runtime.GOARCH + `).

Advisories come from the configured database (as "customs vulndb status"
shows it: the data directory's SQLite file or the PostgreSQL database of
the configuration), or, with --vulndb, from OSV exports (all.zip), record
directories or CVE feeds read into a throwaway database for this scan only:
no server and no database needed. An empty database is an error, not a
clean report.

--fail-on SEVERITY makes the command exit 1 when a finding at or above
SEVERITY exists (critical, high, medium, low, none). A finding whose
severity is unknown (nothing rated it) does not meet those thresholds;
--fail-on unknown is met by every finding, rated or not. The command says
on stderr how many unrated findings a threshold left aside.

Exit codes: 0 no finding met --fail-on (or none given), 1 --fail-on met,
2 an error (bad target, unreachable registry, no vulnerability data...).`

func newScanCmd() *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan TARGET",
		Short: "Scan an image reference, OCI layout, docker-archive tar or root filesystem for vulnerabilities",
		Long:  scanLong,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return scanError(apperr.Errorf(apperr.EINVALID, "give one TARGET to scan (an image reference, OCI layout, docker-archive tar or root filesystem); got %d", len(args)))
			}
			return nil
		},
	}
	cf := bindConfigFlags(cmd.Flags())
	fl := cmd.Flags()
	names := make([]string, 0, len(report.Formats()))
	for _, k := range report.Formats() {
		names = append(names, string(k))
	}
	fl.StringVarP(&f.format, "format", "f", string(report.FormatTable), "output format: "+strings.Join(names, ", "))
	fl.StringVarP(&f.output, "output", "o", "", "write the report to this file instead of stdout (replaced only when the scan succeeds)")
	fl.StringVar(&f.failOn, "fail-on", "", "exit 1 when a finding at or above this severity exists: critical, high, medium, low, none, or unknown (any finding)")
	fl.BoolVar(&f.ignoreUnfixed, "ignore-unfixed", false, "leave out findings that have no fixed version (before --fail-on is applied)")
	fl.StringArrayVar(&f.vulndbPaths, "vulndb", nil, "read advisories from this OSV all.zip, directory or record file instead of the configured database (repeatable)")
	fl.StringVar(&f.platform, "platform", "", "platform of an image index to scan, os/arch[/variant] (default linux/"+runtime.GOARCH+")")
	fl.BoolVar(&f.insecure, "insecure", false, "accept any TLS certificate from the registry")
	fl.BoolVar(&f.plainHTTP, "plain-http", false, "allow plain HTTP to the registry")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress messages on stderr")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return scanError(apperr.Errorf(apperr.EINVALID, "%v", err))
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return scanError(runScan(cmd, cf, f, args[0]))
	}
	return cmd
}

// runScan is customs scan of target.
func runScan(cmd *cobra.Command, cf *configFlags, f scanFlags, target string) error {
	ctx := cmd.Context()
	format, err := report.ParseFormat(f.format)
	if err != nil {
		return apperr.Errorf(apperr.EINVALID, "--format: %v", err)
	}
	var threshold *report.Threshold
	if f.failOn != "" {
		th, err := report.ParseThreshold(f.failOn)
		if err != nil {
			return apperr.Errorf(apperr.EINVALID, "--%v", err)
		}
		threshold = &th
	}
	var platform *v1.Platform
	if f.platform != "" {
		if platform, err = v1.ParsePlatform(f.platform); err != nil {
			return apperr.Errorf(apperr.EINVALID, "--platform %q: %v", f.platform, err)
		}
	}
	progress := func(format string, args ...any) {
		if !f.quiet {
			fmt.Fprintf(cmd.ErrOrStderr(), "customs scan: "+format+"\n", args...)
		}
	}

	// Open the advisories first: a missing database fails before a pull.
	matcher, closeDB, err := openScanVulndb(cmd, cf, f.vulndbPaths, progress)
	if err != nil {
		return err
	}
	defer closeDB()

	start := time.Now()
	tgt, err := resolveTarget(ctx, target, targetOptions{platform: platform, insecure: f.insecure, plainHTTP: f.plainHTTP})
	if err != nil {
		return err
	}
	progress("scanning %s (%s)", tgt.name, tgt.kind)
	x, err := extract.New(extract.Config{})
	if err != nil {
		return err
	}
	var inv *inventory.Inventory
	if tgt.img != nil {
		inv, err = x.Image(ctx, tgt.img)
	} else {
		inv, err = x.Dir(ctx, tgt.dir)
	}
	if err != nil {
		return fmt.Errorf("inventorying %s: %w", tgt.name, err)
	}
	scanned := time.Now()
	progress("found %d packages in %s", len(inv.Packages), scanned.Sub(start).Round(time.Millisecond))

	res, err := matcher.Match(ctx, inv)
	if err != nil {
		return fmt.Errorf("matching: %w", err)
	}
	r := newScanReport(tgt, inv, res, scanned)
	if f.ignoreUnfixed {
		r = report.WithoutUnfixed(r)
	}
	progress("%d findings (vulnerability database revision %d)", len(r.Findings), r.VulnDBRevision)

	opts := report.Options{Subject: tgt.name, ToolVersion: version}
	if err := writeReport(cmd.OutOrStdout(), f.output, r, format, opts); err != nil {
		return err
	}
	if threshold == nil {
		return nil
	}
	met := threshold.Exceeding(r)
	if th := *threshold; th.Level().Known() {
		if n := r.Counts.Unknown; n > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "customs scan: %s of unknown severity left aside by --fail-on %s (--fail-on unknown counts every finding)\n", pluralFindings(n), th)
		}
	}
	if len(met) > 0 {
		return &exitError{code: scanExitFindings, err: fmt.Errorf("%s meet --fail-on %s (the first: %s in %s %s)",
			pluralFindings(len(met)), *threshold, met[0].AdvisoryID, met[0].Package.Name, met[0].InstalledVersion)}
	}
	return nil
}

func pluralFindings(n int) string {
	if n == 1 {
		return "1 finding"
	}
	return fmt.Sprintf("%d findings", n)
}

// newScanReport is the report of one scan done now.
func newScanReport(tgt *target, inv *inventory.Inventory, res *vulndb.MatchResult, scanned time.Time) *report.Report {
	fs := make([]report.Finding, 0, len(res.Findings))
	for _, m := range res.Findings {
		fs = append(fs, report.FromMatch(m))
	}
	report.SortFindings(fs)
	return &report.Report{
		Digest:         tgt.digest,
		MediaType:      tgt.mediaType,
		Platform:       tgt.platform,
		Status:         report.StatusDone,
		VulnDBRevision: res.Revision,
		ScannedAt:      scanned.UTC(),
		MatchedAt:      time.Now().UTC(),
		Distro:         inv.Distro,
		Packages:       len(inv.Packages),
		Counts:         report.CountFindings(fs),
		Findings:       fs,
		Inventory:      inv,
	}
}

// writeReport encodes r to out, or to the file path when it is set: to a
// temp file beside it renamed over it once complete, so a failed scan
// never leaves a half-written report where a previous one was.
func writeReport(out io.Writer, path string, r *report.Report, format report.Format, opts report.Options) error {
	if path == "" {
		return report.Encode(out, r, format, opts)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return apperr.Errorf(apperr.EINVALID, "--output %s: %v", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := report.Encode(tmp, r, format, opts); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// matcher matches an inventory (vulndb.Service does).
type matcher interface {
	Match(ctx context.Context, inv *inventory.Inventory) (*vulndb.MatchResult, error)
}

// openScanVulndb opens the advisories of a scan: the sources given, read
// into a throwaway SQLite database in a temp dir, or else the configured
// database, which must hold advisories.
func openScanVulndb(cmd *cobra.Command, cf *configFlags, paths []string, progress func(string, ...any)) (matcher, func(), error) {
	ctx := cmd.Context()
	if len(paths) == 0 {
		env, err := openVulndb(cmd, cf)
		if err != nil {
			return nil, nil, err
		}
		st, err := env.svc.Status(ctx)
		if err != nil {
			env.Close()
			return nil, nil, err
		}
		if st.Advisories == 0 {
			env.Close()
			return nil, nil, apperr.Errorf(apperr.EINVALID, "the vulnerability database holds no advisories: import some with \"customs vulndb import\", or give --vulndb PATH")
		}
		return env.svc, env.Close, nil
	}
	dir, err := os.MkdirTemp("", "customs-scan-vulndb-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	logger := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "vulndb.db"), logger)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	svc, err := vulndb.Open(vulndb.Options{Store: st, Logger: logger, TempDir: dir})
	if err != nil {
		st.Close()
		cleanup()
		return nil, nil, err
	}
	closeAll := func() {
		svc.Close()
		st.Close()
		cleanup()
	}
	srcs := make([]vulndb.Source, 0, len(paths))
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			closeAll()
			return nil, nil, apperr.Errorf(apperr.EINVALID, "--vulndb %s: %v", p, err)
		}
		srcs = append(srcs, vulndb.Source{Location: p})
	}
	start := time.Now()
	results, err := svc.Import(ctx, srcs...)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	records, skipped := 0, 0
	for _, r := range results {
		if r.Err != nil {
			closeAll()
			return nil, nil, apperr.Errorf(apperr.EINVALID, "--vulndb %s: %s", r.Location, apperr.Message(r.Err))
		}
		records += r.Read
		skipped += len(r.Skipped)
	}
	if records == 0 {
		closeAll()
		return nil, nil, apperr.Errorf(apperr.EINVALID, "--vulndb %s: no OSV records found", strings.Join(paths, ", "))
	}
	progress("read %d advisories from %s in %s (%d bad records skipped)", records, strings.Join(paths, ", "),
		time.Since(start).Round(time.Millisecond), skipped)
	return svc, closeAll, nil
}

// target is what customs scan reads: an image or a root filesystem.
type target struct {
	// kind says what the target is, for messages: "registry image", "OCI
	// layout", "docker archive", "root filesystem".
	kind string
	// name is the target as the report names it (the reference, or the
	// path as given).
	name string
	// img is the image to scan; nil for a root filesystem.
	img v1.Image
	// dir is the root filesystem's directory.
	dir string
	// digest, mediaType and platform of the image manifest.
	digest, mediaType, platform string
}

type targetOptions struct {
	platform            *v1.Platform
	insecure, plainHTTP bool
}

// resolveTarget decides what arg names (see scanLong) and opens it.
func resolveTarget(ctx context.Context, arg string, o targetOptions) (*target, error) {
	if arg == "" {
		return nil, apperr.Errorf(apperr.EINVALID, "empty TARGET")
	}
	if fi, err := os.Stat(arg); err == nil {
		return localTarget(arg, arg, "", fi, o)
	}
	// PATH:TAG — the longest existing path before a colon.
	for i := strings.LastIndex(arg, ":"); i > 0; i = strings.LastIndex(arg[:i], ":") {
		if fi, err := os.Stat(arg[:i]); err == nil {
			if arg[i+1:] == "" {
				return nil, apperr.Errorf(apperr.EINVALID, "%q: empty tag after the path", arg)
			}
			return localTarget(arg, arg[:i], arg[i+1:], fi, o)
		}
	}
	if strings.HasPrefix(arg, ".") || strings.HasPrefix(arg, "/") {
		return nil, apperr.Errorf(apperr.EINVALID, "%s: no such file or directory", arg)
	}
	return remoteTarget(ctx, arg, o)
}

// localTarget opens path (a directory or file; tag from PATH:TAG).
func localTarget(arg, path, tag string, fi os.FileInfo, o targetOptions) (*target, error) {
	switch {
	case fi.IsDir():
		if _, err := os.Stat(filepath.Join(path, "oci-layout")); err == nil {
			img, err := layoutImage(path, tag, o.platform)
			if err != nil {
				return nil, err
			}
			return imageTarget("OCI layout", arg, img)
		}
		if tag != "" {
			return nil, apperr.Errorf(apperr.EINVALID, "%s is a directory without an oci-layout file: a root filesystem has no tags", path)
		}
		return &target{kind: "root filesystem", name: arg, dir: path}, nil
	case fi.Mode().IsRegular():
		var t *name.Tag
		if tag != "" {
			nt, err := nameTag(tag)
			if err != nil {
				return nil, err
			}
			t = &nt
		}
		img, err := tarball.ImageFromPath(path, t)
		if err != nil {
			return nil, apperr.Errorf(apperr.EINVALID, "%s is not a docker-archive tar (docker save) of one image: %v", path, err)
		}
		return imageTarget("docker archive", arg, img)
	}
	return nil, apperr.Errorf(apperr.EINVALID, "%s is neither a directory nor a regular file", path)
}

// nameTag reads the REPO:TAG of FILE:REPO:TAG.
func nameTag(s string) (name.Tag, error) {
	t, err := name.NewTag(s, name.WeakValidation)
	if err != nil {
		return name.Tag{}, apperr.Errorf(apperr.EINVALID, "%q is not a REPOSITORY:TAG of a docker archive: %v", s, err)
	}
	return t, nil
}

// imageTarget describes img.
func imageTarget(kind, name string, img v1.Image) (*target, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "%s: reading the image config: %v", name, err)
	}
	t := &target{kind: kind, name: name, img: img, digest: d.String(), mediaType: string(mt)}
	if cf.OS != "" || cf.Architecture != "" {
		p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		t.platform = p.String()
	}
	return t, nil
}

// refName is the annotation naming an image of an OCI layout.
const refName = "org.opencontainers.image.ref.name"

// layoutImage picks the image of the OCI layout at dir: the only
// manifest of index.json, or the one tagged tag; an index is resolved to
// platform.
func layoutImage(dir, tag string, platform *v1.Platform) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "%s: not an OCI layout: %v", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "%s: reading index.json: %v", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "%s: reading index.json: %v", dir, err)
	}
	var picked []v1.Descriptor
	var tags []string
	for _, d := range im.Manifests {
		t := d.Annotations[refName]
		if t != "" {
			tags = append(tags, t)
		}
		// A ref name may be a full reference ("example.com/app:1.0") or
		// only the tag.
		if tag == "" || t == tag || strings.HasSuffix(t, ":"+tag) {
			picked = append(picked, d)
		}
	}
	switch {
	case len(picked) == 0 && tag != "":
		return nil, apperr.Errorf(apperr.ENOTFOUND, "%s has no image tagged %q (tags: %s)", dir, tag, listOrNone(tags))
	case len(picked) == 0:
		return nil, apperr.Errorf(apperr.EINVALID, "%s: index.json lists no manifest", dir)
	case len(picked) > 1:
		return nil, apperr.Errorf(apperr.EINVALID, "%s holds %d manifests: name one as %s:TAG (tags: %s)", dir, len(picked), dir, listOrNone(tags))
	}
	d := picked[0]
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, apperr.Errorf(apperr.EINVALID, "%s: image index %s: %v", dir, d.Digest, err)
		}
		return platformImage(child, platform, dir)
	}
	if !d.MediaType.IsImage() {
		return nil, apperr.Errorf(apperr.EUNSUPPORTED, "%s: manifest %s is a %s, not an image", dir, d.Digest, d.MediaType)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "%s: image %s: %v", dir, d.Digest, err)
	}
	return img, nil
}

// platformImage is the image of idx for platform (default linux and this
// machine's architecture, or the only image of the index).
func platformImage(idx v1.ImageIndex, platform *v1.Platform, where string) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	want := platform
	if want == nil {
		want = &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	var images []v1.Descriptor
	var have []string
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() || d.Platform == nil || d.Platform.OS == "unknown" {
			continue // attestations and other artifacts
		}
		images = append(images, d)
		have = append(have, d.Platform.String())
		if d.Platform.Satisfies(*want) {
			return idx.Image(d.Digest)
		}
	}
	if platform == nil && len(images) == 1 {
		return idx.Image(images[0].Digest)
	}
	return nil, apperr.Errorf(apperr.ENOTFOUND, "%s has no image for platform %s (platforms: %s); choose one with --platform", where, want, listOrNone(have))
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// remoteTarget pulls the image ref names (only its manifest and config
// here; layers are read as the extractor streams them).
func remoteTarget(ctx context.Context, ref string, o targetOptions) (*target, error) {
	var nopts []name.Option
	if o.plainHTTP {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "%q is not a file, a directory or an image reference: %v", ref, err)
	}
	cfg, err := loadCLIConfig()
	if err != nil {
		return nil, err
	}
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	if o.insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --insecure
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.NewMultiKeychain(customsKeychain{cfg: cfg}, authn.DefaultKeychain)),
		remote.WithTransport(tr),
		remote.WithUserAgent("customs/" + version),
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", r, err)
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("pulling %s: %w", r, err)
		}
		if img, err = platformImage(idx, o.platform, r.String()); err != nil {
			return nil, err
		}
	} else if img, err = desc.Image(); err != nil {
		return nil, fmt.Errorf("pulling %s: %w", r, err)
	}
	return imageTarget("registry image", ref, img)
}

// customsKeychain gives registry credentials from "customs login": the
// refresh token stored for a customs server whose host is the registry's,
// presented as an identity token (the registry token service exchanges it
// with grant_type=refresh_token).
type customsKeychain struct{ cfg *cliConfig }

// Resolve implements authn.Keychain.
func (k customsKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	for server, creds := range k.cfg.Servers {
		u, err := url.Parse(server)
		if err != nil || u.Host != res.RegistryStr() || creds.RefreshToken == "" {
			continue
		}
		return authn.FromConfig(authn.AuthConfig{Username: creds.Username, IdentityToken: creds.RefreshToken}), nil
	}
	return authn.Anonymous, nil
}
