package extract

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	rpmdb "github.com/erikvarga/go-rpmdb/pkg"
	scalibrextractor "github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/dotnet/depsjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gobinary"
	"github.com/google/osv-scalibr/extractor/filesystem/language/java/archive"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagejson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagelockjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/wheelegg"
	"github.com/google/osv-scalibr/extractor/filesystem/language/ruby/gemspec"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargoauditable"
	"github.com/google/osv-scalibr/extractor/filesystem/os/apk"
	"github.com/google/osv-scalibr/extractor/filesystem/os/apk/apkutil"
	apkmeta "github.com/google/osv-scalibr/extractor/filesystem/os/apk/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/dpkg"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/rpm"
	rpmmeta "github.com/google/osv-scalibr/extractor/filesystem/os/rpm/metadata"
	scalibrfs "github.com/google/osv-scalibr/fs"
	rustaudit "github.com/rust-secure-code/go-rustaudit"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"
)

// plugin is the small interface the layer walk needs from an extractor:
// osv-scalibr's extractors sit behind it (scalibrPlugin), next to the few
// readers of our own that scalibr has no plugin for (os-release, dpkg file
// lists).
type plugin interface {
	// id names the plugin and its version in the extractor-set version.
	id() string
	// wants reports whether the file at p (cleaned, relative to the root)
	// with the given metadata must be read. It must not look at content.
	wants(p string, info fs.FileInfo) bool
	// needsRealFile reports whether extract needs in.Root/in.Path to name a
	// real file on disk (rpm databases are opened by path).
	needsRealFile() bool
	// manifest reports whether the plugin parses whole files in memory
	// (package databases, lockfiles, metadata): those are capped by
	// Config.MaxManifestBytes, binaries and archives by MaxFileBytes.
	manifest() bool
	// extract reads one wanted file and adds what it found to out.
	extract(ctx context.Context, in *fileInput, out *FileResult) error
}

// fileInput is one wanted file, read once from the layer.
type fileInput struct {
	// Path is relative to the root, slash-separated.
	Path string
	Info fs.FileInfo
	// Content is positioned at offset 0 before every plugin runs.
	Content readSeekerAt
	// Root, when set, is a directory such that Root/Path is the file on
	// disk (set whenever the content was spooled to disk).
	Root string
	// FS is what scalibr extractors that look around the file see (see
	// scanFS).
	FS scalibrfs.FS
}

// readSeekerAt is what spooled content offers: *bytes.Reader and *os.File.
type readSeekerAt interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

// Plugin names of our own readers.
const (
	osReleaseID = "customs/os-release"
	dpkgListsID = "customs/dpkg-files"
)

// newPlugins returns the extractor set: osv-scalibr's OS and language
// extractors the issue asks for, configured with the file size cap, plus
// our readers.
func newPlugins(maxFileBytes int64) ([]plugin, error) {
	base := &cpb.PluginConfig{
		MaxFileSizeBytes: maxFileBytes,
		PluginSpecific: []*cpb.PluginSpecificConfig{{
			Config: &cpb.PluginSpecificConfig_JavaArchive{JavaArchive: &cpb.JavaArchiveConfig{
				// Nested archives are read into memory: bound them like files.
				MaxOpenedBytes: maxFileBytes,
				HashJars:       new(false),
			}},
		}},
	}
	type ctor struct {
		new     func(*cpb.PluginConfig) (filesystem.Extractor, error)
		kind    osKind
		disk    bool
		binary  bool
		wantsFn func(p string) bool // extra path condition of ours, nil for none
		filter  func(*fileInput, []*scalibrextractor.Package) ([]*scalibrextractor.Package, error)
		// platform, when set, names the platform the file's packages
		// were built for (see inventory.Package.Platform).
		platform func(*fileInput) string
	}
	ctors := []ctor{
		{new: dpkg.New, kind: osDpkg},
		{new: apk.New, kind: osApk},
		{new: rpm.New, kind: osRpm, disk: true, binary: true},
		{new: gobinary.New, binary: true, platform: goBinaryPlatform},
		{new: cargoauditable.New, binary: true, filter: cratesIOOnly},
		{new: packagelockjson.New},
		// Only installed packages: node_modules/NAME/package.json and
		// node_modules/@SCOPE/NAME/package.json, not every package.json of
		// an application's sources or a package's test fixtures.
		{new: packagejson.New, wantsFn: installedNodeModule},
		{new: wheelegg.New}, // .whl and .egg zips are small: capped as manifests
		{new: archive.New, binary: true},
		{new: gemspec.New, wantsFn: installedGemspec},
		{new: depsjson.New},
	}
	ps := []plugin{osReleasePlugin{}, dpkgListsPlugin{}}
	for _, c := range ctors {
		ex, err := c.new(base)
		if err != nil {
			return nil, fmt.Errorf("extract: creating scalibr extractor: %w", err)
		}
		ps = append(ps, &scalibrPlugin{ex: ex, kind: c.kind, disk: c.disk, binary: c.binary, wantsFn: c.wantsFn,
			filter: c.filter, platform: c.platform})
	}
	return ps, nil
}

// installedNodeModule reports whether p is the package.json of a package
// installed under node_modules.
func installedNodeModule(p string) bool {
	dir := path.Dir(p)
	parent := path.Dir(dir)
	if path.Base(parent) == "node_modules" {
		return true
	}
	return strings.HasPrefix(path.Base(parent), "@") && path.Base(path.Dir(parent)) == "node_modules"
}

// installedGemspec reports whether p is an installed gem's specification
// (GEM_HOME/specifications/NAME-VERSION.gemspec), not a gem's source
// .gemspec that may compute its version in Ruby.
func installedGemspec(p string) bool {
	return path.Base(path.Dir(p)) == "specifications"
}

// osKind tells which OS package manager a scalibr extractor reads; its
// packages get their ecosystem and PURL from the image's os-release at
// composition, since a layer does not know the release it will run on.
type osKind string

const (
	osNone osKind = ""
	osDpkg osKind = "dpkg"
	osApk  osKind = "apk"
	osRpm  osKind = "rpm"
)

// scalibrPlugin runs one osv-scalibr filesystem extractor.
type scalibrPlugin struct {
	ex      filesystem.Extractor
	kind    osKind
	disk    bool
	binary  bool // reads binaries, archives or databases, not text
	wantsFn func(string) bool
	// filter, when set, drops packages the extractor reports that are not
	// what their ecosystem says.
	filter func(*fileInput, []*scalibrextractor.Package) ([]*scalibrextractor.Package, error)
	// platform, when set, gives the Platform of every package of a file.
	platform func(*fileInput) string
}

func (s *scalibrPlugin) id() string          { return fmt.Sprintf("%s@%d", s.ex.Name(), s.ex.Version()) }
func (s *scalibrPlugin) needsRealFile() bool { return s.disk }
func (s *scalibrPlugin) manifest() bool      { return !s.binary }

func (s *scalibrPlugin) wants(p string, info fs.FileInfo) bool {
	if s.wantsFn != nil && !s.wantsFn(p) {
		return false
	}
	return s.ex.FileRequired(fileAPI{path: p, info: info})
}

func (s *scalibrPlugin) extract(ctx context.Context, in *fileInput, out *FileResult) error {
	inv, err := s.ex.Extract(ctx, &filesystem.ScanInput{
		FS: in.FS, Path: in.Path, Root: in.Root, Info: in.Info, Reader: in.Content,
	})
	if err != nil {
		return err
	}
	pkgs := inv.Packages
	if s.filter != nil {
		if pkgs, err = s.filter(in, pkgs); err != nil {
			return err
		}
	}
	var platform string
	if s.platform != nil && len(pkgs) > 0 {
		platform = s.platform(in)
	}
	for _, p := range pkgs {
		// A package without a name (a package-lock.json entry
		// "node_modules/ ") can be matched against nothing: left out.
		if pkg, ok := s.convert(p, in.Path); ok && strings.TrimSpace(pkg.Name) != "" {
			if pkg.SourceVersion == pkg.Version {
				pkg.SourceVersion = ""
			}
			pkg.Platform = platform
			out.Packages = append(out.Packages, pkg)
		}
	}
	switch s.kind {
	case osApk:
		if _, err := in.Content.Seek(0, io.SeekStart); err != nil {
			return err
		}
		owns, err := apkOwnedFiles(in.Content)
		if err != nil {
			return err
		}
		out.Owns = append(out.Owns, owns...)
	case osRpm:
		owns, err := rpmOwnedFiles(ctx, in)
		if err != nil {
			return err
		}
		out.Owns = append(out.Owns, owns...)
	}
	return nil
}

// convert turns a scalibr package into ours; ok is false for packages that
// cannot be matched and are left out: a Go main module built from a
// checkout ("(devel)"), a binary built by a development toolchain, and the
// project entry of a .NET deps.json (the application itself).
func (s *scalibrPlugin) convert(p *scalibrextractor.Package, filePath string) (Package, bool) {
	pkg := Package{
		Extractor: s.ex.Name(),
		Name:      p.Name,
		Version:   p.Version,
		PURLType:  p.PURLType,
		Locations: []string{filePath},
	}
	if d := p.Location.PathOrEmpty(); d != "" && d != filePath {
		pkg.Locations = []string{d}
	}
	switch m := p.Metadata.(type) {
	case *depsjson.Metadata:
		if m.Type == "project" { // the application itself, not a NuGet package
			return Package{}, false
		}
	case *dpkgmeta.Metadata:
		pkg.Name = m.PackageName
		pkg.SourceName, pkg.SourceVersion = m.SourceName, m.SourceVersion
		pkg.Arch = m.Architecture
		if pkg.SourceName == pkg.Name {
			pkg.SourceName = ""
		}
		return pkg, true
	case *apkmeta.Metadata:
		if m.OriginName != "" && m.OriginName != pkg.Name {
			pkg.SourceName = m.OriginName
		}
		pkg.Arch = m.Architecture
		return pkg, true
	case *rpmmeta.Metadata:
		pkg.Epoch, pkg.SourceRPM, pkg.Arch = m.Epoch, m.SourceRPM, m.Architecture
		pkg.SourceName, pkg.SourceVersion = splitSourceRPM(m.SourceRPM)
		if pkg.SourceName == pkg.Name && pkg.SourceVersion == pkg.Version {
			pkg.SourceName, pkg.SourceVersion = "", ""
		}
		return pkg, true
	}
	if s.kind != osNone {
		return pkg, true
	}

	// Language packages: the ecosystem and PURL do not depend on the image.
	if s.ex.Name() == gobinary.Name {
		if p.Version == "" || p.Version == "(devel)" || strings.HasPrefix(p.Version, "devel") {
			return Package{}, false
		}
		if p.Name == "go" { // the toolchain the binary was built with
			pkg.Name = "stdlib"
			p = &scalibrextractor.Package{Name: "stdlib", Version: p.Version, PURLType: p.PURLType}
		}
	}
	pkg.Ecosystem = string(p.Ecosystem().Ecosystem)
	if u := p.PURL(); u != nil {
		pkg.PURL = u.String()
	}
	// A package found inside an archive (a jar nested in a war) keeps the
	// path inside it as a second location.
	for _, r := range p.Location.Related {
		if r.File != nil && r.File.Path != pkg.Locations[0] && archive.IsArchive(r.File.Path) {
			pkg.Locations = append(pkg.Locations, r.File.Path)
			break
		}
	}
	return pkg, true
}

// cratesIOOnly keeps the crates of a cargo-auditable binary that come from
// crates.io: scalibr reports every runtime crate as a crates.io package,
// but the binary's own crate and path or git dependencies are not on
// crates.io, and another crate's advisories must not match them. The
// sources are read again with go-rustaudit, the reader scalibr uses.
func cratesIOOnly(in *fileInput, pkgs []*scalibrextractor.Package) ([]*scalibrextractor.Package, error) {
	if len(pkgs) == 0 {
		return pkgs, nil
	}
	info, err := rustaudit.GetDependencyInfo(in.Content)
	if err != nil {
		return nil, fmt.Errorf("cargo-auditable sources: %w", err)
	}
	fromCratesIO := map[string]bool{}
	for _, d := range info.Packages {
		if d.Source == "crates.io" {
			fromCratesIO[d.Name+"@"+d.Version] = true
		}
	}
	var out []*scalibrextractor.Package
	for _, p := range pkgs {
		if fromCratesIO[p.Name+"@"+p.Version] {
			out = append(out, p)
		}
	}
	return out, nil
}

// goBinaryPlatform returns "GOOS/GOARCH" from the build settings of the Go
// binary in, where govulncheck reads them (either part empty when the
// binary does not record it, as binaries of Go before 1.18 do not), or ""
// when it records neither or its build information cannot be read: its
// packages are then matched against advisories of every platform.
func goBinaryPlatform(in *fileInput) string {
	bi, err := buildinfo.Read(in.Content)
	if err != nil {
		return ""
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos == "" && goarch == "" {
		return ""
	}
	return goos + "/" + goarch
}

// splitSourceRPM splits "openssl-3.0.7-27.el9.src.rpm" into "openssl" and
// "3.0.7-27.el9"; empty strings when it does not have that form.
func splitSourceRPM(s string) (name, version string) {
	base, ok := strings.CutSuffix(s, ".rpm")
	if !ok {
		return "", ""
	}
	if i := strings.LastIndexByte(base, '.'); i >= 0 { // the arch: src, nosrc
		base = base[:i]
	}
	rel := strings.LastIndexByte(base, '-')
	if rel <= 0 {
		return "", ""
	}
	ver := strings.LastIndexByte(base[:rel], '-')
	if ver <= 0 {
		return "", ""
	}
	return base[:ver], base[ver+1:]
}

// apkOwnedFiles lists the files of every package in an apk installed
// database: F: names a directory, each R: after it a file in it. An empty
// R: names no file and is skipped (it would own "" or the directory).
func apkOwnedFiles(r io.Reader) ([]string, error) {
	sc := apkutil.NewScanner(r)
	sc.DiscardLongLines()
	var owns []string
	for sc.Scan() {
		dir := ""
		for _, kv := range sc.FullRecord() {
			switch kv.Key {
			case "F":
				dir = kv.Value
			case "R":
				if kv.Value != "" {
					owns = append(owns, path.Join(dir, kv.Value))
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("apk database files: %w", err)
	}
	return owns, nil
}

// rpmOwnedFiles lists the files of every package in an rpm database (bdb,
// ndb or sqlite), with go-rpmdb, the reader scalibr's rpm extractor uses.
func rpmOwnedFiles(ctx context.Context, in *fileInput) ([]string, error) {
	if in.Root == "" {
		return nil, fmt.Errorf("rpm database %s: not on disk", in.Path)
	}
	db, err := rpmdb.Open(path.Join(in.Root, in.Path))
	if err != nil {
		return nil, fmt.Errorf("rpm database files: %w", err)
	}
	defer db.Close()
	pkgs, err := db.ListPackagesWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("rpm database files: %w", err)
	}
	var owns []string
	for _, p := range pkgs {
		names, err := p.InstalledFileNames()
		if err != nil {
			return nil, fmt.Errorf("rpm database files of %s: %w", p.Name, err)
		}
		owns = append(owns, names...)
	}
	return owns, nil
}

// fileAPI is scalibr's view of a file for FileRequired.
type fileAPI struct {
	path string
	info fs.FileInfo
}

func (f fileAPI) Path() string               { return f.path }
func (f fileAPI) Stat() (fs.FileInfo, error) { return f.info, nil }

// osReleasePlugin keeps /etc/os-release and /usr/lib/os-release.
type osReleasePlugin struct{}

// maxOSReleaseBytes bounds an os-release file (real ones are under 1 KiB).
const maxOSReleaseBytes = 64 << 10

func (osReleasePlugin) id() string          { return osReleaseID + "@1" }
func (osReleasePlugin) needsRealFile() bool { return false }
func (osReleasePlugin) manifest() bool      { return true }

func (osReleasePlugin) wants(p string, info fs.FileInfo) bool {
	return isOSReleasePath(p) && info.Size() <= maxOSReleaseBytes
}

func isOSReleasePath(p string) bool { return p == "etc/os-release" || p == "usr/lib/os-release" }

func (osReleasePlugin) extract(_ context.Context, in *fileInput, out *FileResult) error {
	m, err := parseOSRelease(io.LimitReader(in.Content, maxOSReleaseBytes))
	if err != nil {
		return err
	}
	out.OSRelease = m
	return nil
}

// osReleaseKeys are the os-release(5) fields kept: what the distro, the
// ecosystems and the PURLs of OS packages are made of.
var osReleaseKeys = map[string]bool{
	"ID": true, "ID_LIKE": true, "VERSION_ID": true, "VERSION_CODENAME": true,
	"PRETTY_NAME": true, "NAME": true, "CPE_NAME": true, "BUILD_ID": true,
}

// osReleaseUnescape undoes the shell escapes os-release(5) allows inside
// double quotes.
var osReleaseUnescape = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`")

// parseOSRelease reads os-release(5) assignments (KEY=value, values
// optionally quoted with " or ', comments and other lines ignored). Only
// osReleaseKeys are kept; a value is at most 256 bytes.
func parseOSRelease(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxOSReleaseBytes)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !osReleaseKeys[k] {
			continue
		}
		v = strings.TrimSpace(v)
		if q := v[0:min(1, len(v))]; len(v) >= 2 && (q == `"` || q == "'") && v[len(v)-1] == q[0] {
			v = v[1 : len(v)-1]
			if q == `"` {
				v = osReleaseUnescape.Replace(v)
			}
		}
		if len(v) > 256 {
			v = v[:256]
		}
		m[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("os-release: %w", err)
	}
	return m, nil
}

// dpkgListsPlugin reads the files each dpkg package installed: the
// info/NAME.list files of dpkg, and the md5sums of distroless images'
// status.d, so that language packages dpkg installed are reported once.
type dpkgListsPlugin struct{}

func (dpkgListsPlugin) id() string          { return dpkgListsID + "@1" }
func (dpkgListsPlugin) needsRealFile() bool { return false }
func (dpkgListsPlugin) manifest() bool      { return true }

func (dpkgListsPlugin) wants(p string, info fs.FileInfo) bool {
	dir, base := path.Split(p)
	switch dir {
	case "var/lib/dpkg/info/":
		return strings.HasSuffix(base, ".list")
	case "var/lib/dpkg/status.d/":
		return strings.HasSuffix(base, ".md5sums")
	}
	return false
}

func (dpkgListsPlugin) extract(_ context.Context, in *fileInput, out *FileResult) error {
	md5sums := strings.HasSuffix(in.Path, ".md5sums")
	sc := bufio.NewScanner(in.Content)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if md5sums {
			// "d41d8cd98f00b204e9800998ecf8427e  usr/bin/x"
			_, f, ok := strings.Cut(line, "  ")
			if !ok {
				continue
			}
			line = f
		}
		if line == "" || line == "/." {
			continue
		}
		out.Owns = append(out.Owns, line)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("dpkg file list: %w", err)
	}
	return nil
}
