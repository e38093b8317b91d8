package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/scan/layers"
)

// FuzzLayer feeds arbitrary bytes as a layer blob, through extraction and
// composition: nothing panics (extractor panics become problems), errors
// are layer errors, nothing is left in the temp dir, and a result that
// was produced survives the cache's JSON and composes, twice stacked.
func FuzzLayer(f *testing.F) {
	f.Add(tarOf(f, languagesLayer(f)...))
	f.Add(gzipBytes(f, tarOf(f, dirEntries(f, "alpine-3.9")...)))
	f.Add(tarOf(f, baseLayerEntries()...))
	f.Add(tarOf(f,
		file("var/lib/dpkg/status", "Package: a\nStatus: install ok installed\nVersion: 1\nSource: b (2)\n"),
		file("var/lib/dpkg/info/a.list", "/usr/bin/a\n"),
		file("x/.wh.y", ""), file("z/.wh..wh..opq", ""),
		symlink("etc/os-release", "../../x"), hardlink("l", "var/lib/dpkg/status")))
	f.Add(sparseTar(f, "var/lib/dpkg/status", 1<<40, "Package: x\n"))
	f.Add([]byte("not a layer"))

	tmp := f.TempDir()
	lim := layers.Limits{MaxExpandedBytes: 8 << 20, MaxRatio: 100, RatioFloorBytes: 1 << 20, MaxEntries: 10_000}
	x := newExtractor(f, Config{Limits: lim, MaxFileBytes: 1 << 20, MaxMemoryFileBytes: 4 << 10, TempDir: tmp})
	f.Fuzz(func(t *testing.T, blob []byte) {
		res, err := x.ReadLayer(context.Background(), bytes.NewReader(blob), layers.Blob{})
		if left, _ := dirNames(tmp); len(left) != 0 {
			t.Fatalf("temp dir holds %v after a layer", left)
		}
		if err != nil {
			if !isLayerErr(err) {
				t.Fatalf("error of no layer kind: %v", err)
			}
			return
		}
		b, err := res.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalLayerResult(b)
		if err != nil {
			t.Fatalf("cached form does not read back: %v", err)
		}
		inv, err := Compose([]*LayerResult{back, res}, []string{"sha256:a", "sha256:b"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := json.Marshal(inv); err != nil {
			t.Fatal(err)
		}
		for _, p := range inv.Packages {
			if p.Layer != "sha256:a" && p.Layer != "sha256:b" {
				t.Fatalf("package %+v of no layer", p)
			}
			for _, l := range p.Locations {
				if !strings.HasPrefix(l, "/") || strings.Contains(l, "/../") {
					t.Fatalf("package %+v: location %q is not a path in the image", p, l)
				}
			}
		}
	})
}

func isLayerErr(err error) bool {
	for _, k := range []error{layers.ErrUnsupported, layers.ErrCorrupt, layers.ErrTooLarge, layers.ErrUnsafePath, layers.ErrDigestMismatch} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// FuzzParseOSRelease: any os-release content parses to known keys with
// bounded values.
func FuzzParseOSRelease(f *testing.F) {
	f.Add("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.9.6\n")
	f.Add("ID='debian'\nPRETTY_NAME=\"Debian \\\"x\\\" \\$HOME\"\n# comment\nBAD LINE\n")
	f.Add("ID=\"\nVERSION_ID=\"")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseOSRelease(strings.NewReader(s))
		if err != nil {
			return // a line over the size bound
		}
		for k, v := range m {
			if !osReleaseKeys[k] || len(v) > 256 {
				t.Fatalf("%q=%q kept", k, v)
			}
		}
	})
}

func TestParseOSRelease(t *testing.T) {
	m, err := parseOSRelease(strings.NewReader("# c\nNAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID='12'\nPRETTY_NAME=\"say \\\"hi\\\"\"\nHOME_URL=\"x\"\nID_LIKE=\nnot a line\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"NAME": "Debian GNU/Linux", "ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": `say "hi"`, "ID_LIKE": ""}
	if len(m) != len(want) {
		t.Errorf("got %v; want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q; want %q", k, m[k], v)
		}
	}
}

func TestSplitSourceRPM(t *testing.T) {
	for _, tc := range []struct{ in, name, version string }{
		{"openssl-3.0.7-27.el9.src.rpm", "openssl", "3.0.7-27.el9"},
		{"python3.11-3.11.2-2.el9.src.rpm", "python3.11", "3.11.2-2.el9"},
		{"glibc-2.34-60.el9.nosrc.rpm", "glibc", "2.34-60.el9"},
		{"weird.rpm", "", ""},
		{"no-release.src.rpm", "", ""},
		{"", "", ""},
	} {
		if n, v := splitSourceRPM(tc.in); n != tc.name || v != tc.version {
			t.Errorf("splitSourceRPM(%q) = %q, %q; want %q, %q", tc.in, n, v, tc.name, tc.version)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{MaxFileBytes: 1 << 20, MaxMemoryFileBytes: 2 << 20}); err == nil || !strings.Contains(err.Error(), "MaxMemoryFileBytes") {
		t.Errorf("err = %v; want MaxMemoryFileBytes over MaxFileBytes refused", err)
	}
	if _, err := New(Config{MaxFileBytes: -1}); err == nil {
		t.Error("negative MaxFileBytes accepted")
	}
	a, b := newExtractor(t, Config{}), newExtractor(t, Config{MaxFileBytes: 1 << 20})
	if a.Version() == b.Version() || !strings.HasPrefix(a.Version(), fmt.Sprintf("extract/%d scalibr/", resultSchema)) {
		t.Errorf("versions %q and %q: want different, naming the schema and scalibr", a.Version(), b.Version())
	}
}

func dirNames(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, err
}
