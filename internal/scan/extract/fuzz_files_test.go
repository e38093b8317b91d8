package extract

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets here feed one file at a time to the extractors that
// want its path — the package databases (dpkg status and file lists, apk
// installed, rpm) and the language manifests (package-lock.json, an
// installed package.json, Python METADATA/PKG-INFO, gemspecs, .NET
// deps.json) — instead of through a whole layer as FuzzLayer does, so the
// fuzzer spends its time inside one parser. The extractors are called
// directly, not through runPlugin, so a panic is a failure here even
// though a layer scan would turn it into a problem. Invariants: every
// package has a name and the extractor's name, and a location; every owned
// file is named; an error has a message.

// fuzzFile runs the extractors that want rel (a path in an image) on each
// input, as a real file under a temp root (the rpm reader opens it by path).
func fuzzFile(f *testing.F, rel string, seeds ...[]byte) {
	f.Helper()
	ps, err := newPlugins(1 << 20)
	if err != nil {
		f.Fatal(err)
	}
	probe := filepath.Join(f.TempDir(), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(probe), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(probe, []byte("x"), 0o644); err != nil {
		f.Fatal(err)
	}
	info, err := os.Stat(probe)
	if err != nil {
		f.Fatal(err)
	}
	var want []plugin
	for _, pl := range ps {
		if pl.wants(rel, info) {
			want = append(want, pl)
		}
	}
	if len(want) == 0 {
		f.Fatalf("no extractor wants %s", rel)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		fi, err := fh.Stat()
		if err != nil {
			t.Fatal(err)
		}
		in := &fileInput{Path: rel, Info: fi, Content: fh, Root: root, FS: scanFS()}
		for _, pl := range want {
			if _, err := fh.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			var fr FileResult
			if err := pl.extract(context.Background(), in, &fr); err != nil {
				if strings.TrimSpace(err.Error()) == "" {
					t.Fatalf("%s: an error without a message", pl.id())
				}
				continue
			}
			for _, pkg := range fr.Packages {
				if strings.TrimSpace(pkg.Name) == "" || pkg.Extractor == "" || len(pkg.Locations) == 0 {
					t.Fatalf("%s: package %+v lacks a name, extractor or location", pl.id(), pkg)
				}
			}
			for _, o := range fr.Owns {
				if o == "" {
					t.Fatalf("%s: an owned file with no name", pl.id())
				}
			}
		}
	})
}

// testdataFile reads a file of testdata/rootfs.
func testdataFile(f *testing.F, rel string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rootfs", filepath.FromSlash(rel)))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

const dpkgStatusSeed = `Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2

Package: removed
Status: deinstall ok config-files
Version: 1
`

func FuzzDpkgStatus(f *testing.F) {
	fuzzFile(f, "var/lib/dpkg/status", []byte(dpkgStatusSeed), []byte("Package: a\nStatus: install ok installed\nVersion: 1\nSource: b (2)\n"),
		[]byte("Package:\nVersion: \n"), []byte{})
}

func FuzzDpkgStatusD(f *testing.F) {
	fuzzFile(f, "var/lib/dpkg/status.d/base-files", []byte(dpkgStatusSeed))
}

func FuzzDpkgFileList(f *testing.F) {
	fuzzFile(f, "var/lib/dpkg/info/libc6:amd64.list", []byte("/.\n/lib\n/lib/x86_64-linux-gnu/libc.so.6\n"), []byte("\n\n"))
}

func FuzzDpkgMD5Sums(f *testing.F) {
	fuzzFile(f, "var/lib/dpkg/status.d/base-files.md5sums", []byte("d41d8cd98f00b204e9800998ecf8427e  usr/bin/x\nbad line\n"))
}

func FuzzApkInstalled(f *testing.F) {
	fuzzFile(f, "lib/apk/db/installed", testdataFile(f, "alpine-3.9/lib/apk/db/installed"),
		[]byte("P:a\nV:1\nF:usr/bin\nR:a\n\nP:\n"), []byte("F:\nR:\n"))
}

func FuzzRpmDB(f *testing.F) {
	// Real databases are megabytes; the seeds are the three formats'
	// beginnings (SQLite, Berkeley DB hash, ndb) for the fuzzer to grow.
	sqliteHead := append([]byte("SQLite format 3\x00"), make([]byte, 84)...)
	bdb := make([]byte, 512)
	copy(bdb[12:], []byte{0x61, 0x15, 0x06, 0x00}) // hash magic 0x00061561, little endian
	ndb := append([]byte("RpmP"), make([]byte, 60)...)
	fuzzFile(f, "var/lib/rpm/rpmdb.sqlite", sqliteHead, bdb, ndb, []byte{})
}

func FuzzRpmPackagesDB(f *testing.F) {
	ndb := append([]byte("RpmP"), make([]byte, 60)...)
	fuzzFile(f, "var/lib/rpm/Packages.db", ndb)
}

func FuzzPackageLockJSON(f *testing.F) {
	fuzzFile(f, "app/package-lock.json", testdataFile(f, "languages/app/package-lock.json"),
		[]byte(`{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"2"}}}}}`),
		[]byte(`{"lockfileVersion":3,"packages":{"":{},"node_modules/x":{"version":""}}}`))
}

func FuzzInstalledPackageJSON(f *testing.F) {
	fuzzFile(f, "app/node_modules/minimist/package.json", testdataFile(f, "languages/app/node_modules/minimist/package.json"),
		[]byte(`{"name":"","version":"1"}`), []byte(`{"name":{"x":1}}`))
}

func FuzzPythonMetadata(f *testing.F) {
	fuzzFile(f, "usr/local/lib/python3.11/site-packages/urllib3-1.24.1.dist-info/METADATA",
		testdataFile(f, "languages/usr/local/lib/python3.11/site-packages/urllib3-1.24.1.dist-info/METADATA"),
		[]byte("Metadata-Version: 2.1\nName: \nVersion: 1\n"))
}

func FuzzPythonPKGINFO(f *testing.F) {
	fuzzFile(f, "usr/local/lib/python3.11/site-packages/PyYAML-5.3-py3.11.egg-info/PKG-INFO",
		testdataFile(f, "languages/usr/local/lib/python3.11/site-packages/PyYAML-5.3-py3.11.egg-info/PKG-INFO"))
}

func FuzzGemspec(f *testing.F) {
	fuzzFile(f, "usr/local/bundle/specifications/rack-2.2.3.gemspec",
		testdataFile(f, "languages/usr/local/bundle/specifications/rack-2.2.3.gemspec"),
		[]byte("Gem::Specification.new do |s|\n  s.name = \"\"\n  s.version = \"1\"\nend\n"))
}

func FuzzDepsJSON(f *testing.F) {
	fuzzFile(f, "srv/app/MyApp.deps.json", testdataFile(f, "languages/srv/app/MyApp.deps.json"),
		[]byte(`{"libraries":{"/1.0":{"type":"package"},"A/":{"type":"package"}}}`))
}
