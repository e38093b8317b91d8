package extract

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
)

// TestAlpineImage: an Alpine 3.9 image whose apk database carries musl
// 1.1.20-r4 (ALPINE-CVE-2019-14697) is inventoried with the release from
// /etc/os-release, origins as source packages, and the Python package apk
// installed reported once, as the apk package.
func TestAlpineImage(t *testing.T) {
	img := imageOf(t, layerOf(t, dirEntries(t, "alpine-3.9")...))
	inv, err := newExtractor(t, Config{}).Image(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "alpine-3.9", inv, diffIDs(t, img), nil)

	if inv.Distro == nil || inv.Distro.ID != "alpine" || inv.Distro.VersionID != "3.9.6" {
		t.Errorf("distro %+v; want alpine 3.9.6", inv.Distro)
	}
	musl := find(inv, inventory.Alpine, "musl")
	if len(musl) != 1 || musl[0].Version != "1.1.20-r4" || musl[0].SourceName != "" {
		t.Errorf("musl: %+v; want one, 1.1.20-r4, its own source", musl)
	}
	if u := find(inv, inventory.Alpine, "musl-utils"); len(u) != 1 || u[0].SourceName != "musl" {
		t.Errorf("musl-utils: %+v; want source musl", u)
	}
	if py := find(inv, inventory.PyPI, "py-alpine"); len(py) != 0 {
		t.Errorf("py-alpine reported as a PyPI package although apk installed it: %+v", py)
	}
}

// languagesLayer is the testdata languages tree plus the archives and
// binaries made in-test: jars (one nested in a war) and a cargo-auditable
// Rust binary.
func languagesLayer(t testing.TB) []ent {
	ents := dirEntries(t, "languages")
	commonsText := jarOf(t, "org.apache.commons", "commons-text", "1.9", nil)
	war := zipOf(t, map[string][]byte{
		"WEB-INF/web.xml":                  []byte("<web-app/>"),
		"WEB-INF/lib/commons-text-1.9.jar": commonsText,
	})
	rust := rustAuditableELF(t, []rustPackage{
		{Name: "rustapp", Version: "0.1.0", Source: "local", Kind: "runtime", Dependencies: []int{1, 2}, Root: true},
		{Name: "smallvec", Version: "1.6.0", Source: "crates.io", Kind: "runtime"},
		{Name: "time", Version: "0.1.43", Source: "crates.io", Kind: "runtime"},
		{Name: "cc", Version: "1.0.67", Source: "crates.io", Kind: "build"},
	})
	return append(ents,
		file("opt/java/lib/log4j-core-2.14.1.jar", string(jarOf(t, "org.apache.logging.log4j", "log4j-core", "2.14.1", nil))),
		file("srv/webapps/app.war", string(war)),
		exe("usr/local/bin/rustapp", rust),
		exe("usr/local/bin/script", []byte("#!/bin/sh\necho not a binary\n")),
	)
}

// TestLanguagesImage: every language ecosystem the scanner reads, with
// exact expected packages: Python dist-info and egg-info, npm lockfile and
// installed node_modules (not a package's test fixtures, not the
// application's own package.json), Maven jars with nested jars, a Ruby
// gemspec, .NET deps.json (not the project itself) and a Rust binary built
// with cargo-auditable (runtime dependencies only).
func TestLanguagesImage(t *testing.T) {
	img := imageOf(t, layerOf(t, languagesLayer(t)...))
	inv, err := newExtractor(t, Config{}).Image(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "languages", inv, diffIDs(t, img), nil)
	for _, absent := range []string{"lodash-test-fixture", "webapp", "MyApp", "cc"} {
		for _, p := range inv.Packages {
			if p.Name == absent {
				t.Errorf("reported %s %s %s", p.Ecosystem, p.Name, p.Version)
			}
		}
	}
	if p := find(inv, inventory.Maven, "org.apache.commons:commons-text"); len(p) != 1 ||
		!strings.HasSuffix(p[0].Locations[len(p[0].Locations)-1], "app.war/WEB-INF/lib/commons-text-1.9.jar") {
		t.Errorf("nested jar: %+v; want its path inside the war as a location", p)
	}
}

// TestGoBinary: a Go binary built in the test against golang.org/x/text
// v0.3.5 yields the module and the stdlib at the toolchain's version; the
// same binary installed by dpkg (listed as /bin/goapp on a usr-merged
// image, stored at usr/bin/goapp) is left to the OS package; a hard link
// to it in the same layer is the same binary at a second location.
func TestGoBinary(t *testing.T) {
	bin, gover := goTestBinary(t)
	img := imageOf(t,
		layerOf(t,
			file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"),
			symlink("bin", "usr/bin"),
			file("var/lib/dpkg/status", "Package: goapp\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n\n"),
			file("var/lib/dpkg/info/goapp.list", "/.\n/bin\n/bin/goapp\n"),
			exe("usr/bin/goapp", bin),
		),
		layerOf(t,
			exe("usr/local/bin/app", bin),
			hardlink("usr/local/bin/app-link", "usr/local/bin/app"),
		),
	)
	inv, err := newExtractor(t, Config{}).Image(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimPrefix(gover, "go")
	host := runtime.GOOS + "/" + runtime.GOARCH
	golden(t, "gobinary", inv, diffIDs(t, img), map[string]string{
		`"` + v + `"`: `"GOVERSION"`, "@" + v + `"`: `@GOVERSION"`, `"platform": "` + host + `"`: `"platform": "GOOS/GOARCH"`,
	})
	std := find(inv, inventory.Go, "stdlib")
	if len(std) != 1 || "go"+std[0].Version != gover {
		t.Errorf("stdlib: %+v; want one at %s", std, gover)
	}
	// The binary was built for this machine: its packages say so, the OS
	// package does not.
	for _, p := range inv.Packages {
		want := ""
		if p.Ecosystem == inventory.Go {
			want = host
		}
		if p.Platform != want {
			t.Errorf("%s %s: platform %q, want %q", p.Ecosystem, p.Name, p.Platform, want)
		}
	}
}

// TestGoBinaryPlatform: a Go binary's packages carry the GOOS/GOARCH of
// its build settings, not the scanning machine's or the image's; the same
// module in binaries of two platforms is two packages, each with its own
// locations; a binary whose build information records no platform gives
// packages without one.
func TestGoBinaryPlatform(t *testing.T) {
	bin, _ := goTestBinary(t)
	goos := otherName(runtime.GOOS, "plan9", "linux", "netbsd", "darwin", "illumos", "windows")
	goarch := otherName(runtime.GOARCH, "arm64", "amd64", "riscv64", "ppc64le", "386", "arm")
	other := setBuildSetting(t, setBuildSetting(t, bin, "GOOS", goos), "GOARCH", goarch)
	none := setBuildSetting(t, setBuildSetting(t, bin, "GOOS", ""), "GOARCH", "")
	img := imageOf(t, layerOf(t,
		exe("usr/local/bin/host", bin),
		exe("opt/other/app", other),
		exe("opt/other/app2", other),
		exe("opt/none/app", none),
	))
	inv, err := newExtractor(t, Config{}).Image(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ platform, locations string }
	got := map[seen]bool{}
	for _, p := range find(inv, inventory.Go, "golang.org/x/text") {
		got[seen{p.Platform, strings.Join(p.Locations, " ")}] = true
	}
	want := map[seen]bool{
		{runtime.GOOS + "/" + runtime.GOARCH, "/usr/local/bin/host"}: true,
		{goos + "/" + goarch, "/opt/other/app /opt/other/app2"}:      true,
		{"", "/opt/none/app"}: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("golang.org/x/text packages (platform, locations) = %v, want %v", got, want)
	}
}

// otherName returns a name of names of the same length as s that is not
// s, so that a patched binary looks like one built elsewhere, or one made
// of "x" when none fits.
func otherName(s string, names ...string) string {
	for _, n := range names {
		if len(n) == len(s) && n != s {
			return n
		}
	}
	return strings.Repeat("x", len(s))
}

// setBuildSetting returns a copy of the Go binary b whose build setting
// key (GOOS, GOARCH) has value, of the same length as the old one, or,
// for value "", no such setting (its key is renamed). The setting line is
// rewritten in place, so the length-prefixed build information stays
// well-formed; buildinfo.Read must then read what was written.
func setBuildSetting(t *testing.T, b []byte, key, value string) []byte {
	t.Helper()
	bi, err := buildinfo.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	old := ""
	for _, s := range bi.Settings {
		if s.Key == key {
			old = s.Value
		}
	}
	if old == "" {
		t.Fatalf("test binary has no %s build setting", key)
	}
	from := "\nbuild\t" + key + "=" + old + "\n"
	to := "\nbuild\t" + key + "=" + value + "\n"
	if value == "" {
		to = "\nbuild\tX" + key[1:] + "=" + old + "\n"
	}
	if len(to) != len(from) {
		t.Fatalf("%s=%s does not have the length of %s=%s", key, value, key, old)
	}
	if !bytes.Contains(b, []byte(from)) {
		t.Fatalf("test binary does not hold %q", from)
	}
	out := bytes.ReplaceAll(b, []byte(from), []byte(to))
	bi, err = buildinfo.Read(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("patched binary: %v", err)
	}
	got := ""
	for _, s := range bi.Settings {
		if s.Key == key {
			got = s.Value
		}
	}
	if got != value {
		t.Fatalf("patched binary: %s=%q, want %q", key, got, value)
	}
	return out
}

// TestLayering: whiteouts, opaque directories, a rewritten dpkg status and
// the layer each package is attributed to.
func TestLayering(t *testing.T) {
	const site = "usr/local/lib/python3.11/site-packages/"
	status := func(pkgs ...string) string { return strings.Join(pkgs, "\n") + "\n" }
	libc := "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n"
	ssl := func(v string) string {
		return "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: " + v + "\n"
	}
	six := "Package: python3-six\nStatus: install ok installed\nArchitecture: all\nSource: six\nVersion: 1.16.0-4\n"
	curl := "Package: libcurl4\nStatus: install ok installed\nArchitecture: amd64\nSource: curl (7.88.1-10+deb12u5)\nVersion: 7.88.1-10+deb12u5\n"
	removed := "Package: oldpkg\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n"
	meta := func(name, version string) string {
		return "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"
	}
	npm := func(name, version string) string {
		return `{"name": "` + name + `", "version": "` + version + `"}`
	}
	img := imageOf(t,
		layerOf(t, // 0: the base
			file("usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"),
			symlink("etc/os-release", "../usr/lib/os-release"),
			file("var/lib/dpkg/status", status(libc, ssl("3.0.11-1~deb12u2"), six, removed)),
			file("var/lib/dpkg/info/python3-six.list", "/.\n/usr/lib/python3/dist-packages/six-1.16.0.dist-info\n/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA\n"),
			file("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", meta("six", "1.16.0")),
			file(site+"requests-2.19.0.dist-info/METADATA", meta("requests", "2.19.0")),
			file(site+"urllib3-1.24.1.dist-info/METADATA", meta("urllib3", "1.24.1")),
			file("app/node_modules/lodash/package.json", npm("lodash", "4.17.15")),
		),
		layerOf(t, // 1: pip uninstall requests; node_modules replaced
			file(site+".wh.requests-2.19.0.dist-info", ""),
			file("app/node_modules/.wh..wh..opq", ""),
			file("app/node_modules/minimist/package.json", npm("minimist", "1.2.0")),
		),
		layerOf(t, // 2: apt-get upgrade && apt-get install libcurl4
			file("var/lib/dpkg/status", status(libc, ssl("3.0.13-1~deb12u1"), six, curl)),
		),
		layerOf(t, // 3: urllib3 rewritten, same version: still from layer 0
			file(site+"urllib3-1.24.1.dist-info/METADATA", meta("urllib3", "1.24.1")+"Summary: reinstalled\n"),
		),
	)
	inv, err := newExtractor(t, Config{}).Image(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	ids := diffIDs(t, img)
	golden(t, "layering", inv, ids, nil)

	for _, tc := range []struct {
		eco, name, version string
		layer              int
	}{
		{inventory.Debian, "libc6", "2.36-9+deb12u4", 0},
		{inventory.Debian, "libssl3", "3.0.13-1~deb12u1", 2},
		{inventory.Debian, "python3-six", "1.16.0-4", 0},
		{inventory.Debian, "libcurl4", "7.88.1-10+deb12u5", 2},
		{inventory.PyPI, "urllib3", "1.24.1", 0},
		{inventory.NPM, "minimist", "1.2.0", 1},
	} {
		got := find(inv, tc.eco, tc.name)
		if len(got) != 1 || got[0].Version != tc.version || got[0].Layer != ids[tc.layer] {
			t.Errorf("%s %s: %+v; want %s from layer %d", tc.eco, tc.name, got, tc.version, tc.layer)
		}
	}
	for _, gone := range []string{"requests", "lodash", "six", "oldpkg"} {
		for _, p := range inv.Packages {
			if p.Name == gone {
				t.Errorf("%s %s %s should be gone", p.Ecosystem, p.Name, p.Version)
			}
		}
	}
}

// rpmTestdata returns the directory of the rpm databases osv-scalibr tests
// with (real databases of CentOS 7, openSUSE Leap 15.5 and Rocky Linux 9.2
// images), in the module cache.
func rpmTestdata(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/osv-scalibr").Output()
	if err != nil {
		t.Fatalf("locating osv-scalibr: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "extractor", "filesystem", "os", "rpm", "testdata")
}

// TestRPM: the three rpm database formats (Berkeley DB, ndb, sqlite), with
// epochs in versions, source rpms as source packages, the distro's OSV
// ecosystem, and Python packages an rpm installed left to the rpm.
func TestRPM(t *testing.T) {
	dir := rpmTestdata(t)
	for _, tc := range []struct {
		name, db, dbPath, osRelease string
		count                       int
		eco                         string
		check                       inventory.Package
		owned                       string
	}{
		{
			name: "centos 7 bdb", db: "Packages", dbPath: "var/lib/rpm/Packages",
			osRelease: "NAME=\"CentOS Linux\"\nVERSION=\"7 (Core)\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\nPRETTY_NAME=\"CentOS Linux 7 (Core)\"\nCPE_NAME=\"cpe:/o:centos:centos:7\"\n",
			count:     148, eco: "", // OSV has no CentOS ecosystem
			check: inventory.Package{Name: "openssl-libs", Version: "1:1.0.2k-19.el7", SourceName: "openssl"},
			owned: "usr/lib/python2.7/site-packages/chardet-2.2.1-py2.7.egg-info/PKG-INFO",
		},
		{
			name: "opensuse leap 15.5 ndb", db: "Packages.db", dbPath: "usr/lib/sysimage/rpm/Packages.db",
			osRelease: "NAME=\"openSUSE Leap\"\nVERSION=\"15.5\"\nID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"openSUSE Leap 15.5\"\nCPE_NAME=\"cpe:/o:opensuse:leap:15.5\"\n",
			count:     137, eco: inventory.OpenSUSE,
			check: inventory.Package{Name: "filesystem", Version: "15.0-11.8.1"},
		},
		{
			name: "rocky 9.2 sqlite", db: "rpmdb.sqlite", dbPath: "var/lib/rpm/rpmdb.sqlite",
			osRelease: "NAME=\"Rocky Linux\"\nVERSION=\"9.2 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.2\"\nPRETTY_NAME=\"Rocky Linux 9.2 (Blue Onyx)\"\nCPE_NAME=\"cpe:/o:rocky:rocky:9::baseos\"\n",
			count:     141, eco: inventory.Rocky,
			check: inventory.Package{Name: "openssl-libs", Version: "1:3.0.7-6.el9_2", SourceName: "openssl"},
			owned: "usr/lib64/python3.9/site-packages/libcomps-0.1.18-py3.9.egg-info/PKG-INFO",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := os.ReadFile(filepath.Join(dir, tc.db))
			if err != nil {
				t.Fatal(err)
			}
			ents := []ent{file("etc/os-release", tc.osRelease), file(tc.dbPath, string(db))}
			if tc.owned != "" {
				ents = append(ents, file(tc.owned, "Metadata-Version: 1.1\nName: owned\nVersion: 1.0\n"))
			}
			inv, err := newExtractor(t, Config{TempDir: t.TempDir()}).Image(context.Background(), imageOf(t, layerOf(t, ents...)))
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Packages) != tc.count {
				t.Errorf("%d packages; want %d", len(inv.Packages), tc.count)
			}
			for _, p := range inv.Packages {
				if p.Ecosystem != tc.eco || !strings.HasPrefix(p.PURL, "pkg:rpm/") || p.Locations[0] != "/"+tc.dbPath {
					t.Fatalf("package %+v: want ecosystem %q, an rpm PURL, location /%s", p, tc.eco, tc.dbPath)
				}
			}
			got := find(inv, tc.eco, tc.check.Name)
			if len(got) != 1 || got[0].Version != tc.check.Version || got[0].SourceName != tc.check.SourceName || got[0].SourceVersion != tc.check.SourceVersion {
				t.Errorf("%s: %+v; want %+v", tc.check.Name, got, tc.check)
			}
		})
	}
}

// TestDir: a root filesystem unpacked in a directory gives the same
// inventory as the image of it, without layers.
func TestDir(t *testing.T) {
	ents := languagesLayer(t)
	img := imageOf(t, layerOf(t, ents...))
	x := newExtractor(t, Config{})
	want, err := x.Image(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, e := range ents {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if e.mode != 0 {
			mode = os.FileMode(e.mode)
		}
		if err := os.WriteFile(p, e.body, mode); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink out of the directory is not followed.
	os.Symlink("/etc", filepath.Join(dir, "host-etc"))
	got, err := x.Dir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.Packages {
		want.Packages[i].Layer = ""
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("directory inventory differs from the image's:\n got %+v\nwant %+v", got, want)
	}
}
