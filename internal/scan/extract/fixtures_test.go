package extract

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/customs-dev/customs/internal/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// ent is one tar entry a test writes.
type ent struct {
	name string
	typ  byte // tar.Type*, default TypeReg
	body []byte
	link string
	mode int64
}

func file(name, body string) ent { return ent{name: name, body: []byte(body)} }
func exe(name string, body []byte) ent {
	return ent{name: name, body: body, mode: 0o755}
}
func symlink(name, target string) ent { return ent{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target}
}

// fixedTime makes tar archives, hence diffIDs, reproducible.
var fixedTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// tarOf writes the entries as an uncompressed tar archive.
func tarOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: fixedTime, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dirEntries returns the files under testdata/rootfs/name as tar entries
// rooted at "/", in lexical order.
func dirEntries(t testing.TB, name string) []ent {
	t.Helper()
	root := filepath.Join("testdata", "rootfs", name)
	var ents []ent
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		ents = append(ents, ent{name: filepath.ToSlash(rel), body: b})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ents
}

// layerOf returns a gzip layer of the entries (Docker media type, as
// tarball.LayerFromOpener makes it).
func layerOf(t testing.TB, ents ...ent) v1.Layer {
	t.Helper()
	b := tarOf(t, ents...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf stacks layers (first = bottom) on an empty linux image.
func imageOf(t testing.TB, ls ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// countingLayer counts how often its blob is opened.
type countingLayer struct {
	v1.Layer
	opens *atomic.Int64
	// mediaType, when set, replaces the layer's media type.
	mediaType types.MediaType
}

func (c countingLayer) Compressed() (io.ReadCloser, error) {
	c.opens.Add(1)
	return c.Layer.Compressed()
}

func (c countingLayer) MediaType() (types.MediaType, error) {
	if c.mediaType != "" {
		return c.mediaType, nil
	}
	return c.Layer.MediaType()
}

// zipOf writes a zip archive (a jar, a war) of name -> content.
func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: fixedTime})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jarOf returns a jar holding the Maven pom.properties of
// group:artifact:version and a manifest.
func jarOf(t testing.TB, group, artifact, version string, more map[string][]byte) []byte {
	t.Helper()
	files := map[string][]byte{
		"META-INF/MANIFEST.MF": []byte("Manifest-Version: 1.0\r\nImplementation-Title: " + artifact + "\r\nImplementation-Version: " + version + "\r\n\r\n"),
		"META-INF/maven/" + group + "/" + artifact + "/pom.properties": []byte(
			"#Created by Apache Maven\ngroupId=" + group + "\nartifactId=" + artifact + "\nversion=" + version + "\n"),
		"org/example/Some.class": bytes.Repeat([]byte{0xca, 0xfe, 0xba, 0xbe}, 16),
	}
	for k, v := range more {
		files[k] = v
	}
	return zipOf(t, files)
}

// rustPackage is one package of cargo-auditable's dependency list.
type rustPackage struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Source       string `json:"source"`
	Kind         string `json:"kind,omitempty"`
	Dependencies []int  `json:"dependencies,omitempty"`
	Root         bool   `json:"root,omitempty"`
}

// rustAuditableELF returns a minimal x86-64 ELF file whose .dep-v0 section
// holds the zlib-compressed dependency JSON cargo-auditable embeds in the
// Rust binaries it builds.
func rustAuditableELF(t testing.TB, pkgs []rustPackage) []byte {
	t.Helper()
	js, err := json.Marshal(map[string]any{"packages": pkgs})
	if err != nil {
		t.Fatal(err)
	}
	var dep bytes.Buffer
	zw := zlib.NewWriter(&dep)
	zw.Write(js)
	zw.Close()
	shstr := []byte("\x00.dep-v0\x00.shstrtab\x00")

	const ehsize, shentsize = 64, 64
	depOff := uint64(ehsize)
	strOff := depOff + uint64(dep.Len())
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7
	var out bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: ehsize, Phentsize: 56, Shentsize: shentsize, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&out, binary.LittleEndian, hdr)
	out.Write(dep.Bytes())
	out.Write(shstr)
	out.Write(make([]byte, shOff-uint64(out.Len())))
	for _, s := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: depOff, Size: uint64(dep.Len()), Addralign: 1},
		{Name: 9, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	} {
		binary.Write(&out, binary.LittleEndian, s)
	}
	return out.Bytes()
}

// goTestProgram is a tiny module requiring golang.org/x/text v0.3.5
// (GO-2021-0113, fixed in 0.3.7).
const (
	goTestMod = "module example.com/customs/goapp\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.5\n"
	goTestSrc = `package main

import (
	"fmt"

	"golang.org/x/text/language"
)

func main() { fmt.Println(language.English) }
`
)

// goTestBinary returns the test program built by the local Go toolchain,
// and that toolchain's version ("go1.26.8"). Builds are kept under the
// test cache ($CUSTOMS_TEST_CACHE or ~/.cache/customs-test), keyed by
// source and toolchain, so only the first run pays for the build (and
// fetches x/text from the module proxy).
func goTestBinary(t testing.TB) ([]byte, string) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatalf("go env GOVERSION: %v", err)
	}
	gover := strings.TrimSpace(string(out))
	sum := sha256.Sum256([]byte(goTestMod + goTestSrc + gover))
	cache := os.Getenv("CUSTOMS_TEST_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "customs-test")
	}
	bin := filepath.Join(cache, "gobin", "goapp-"+hex.EncodeToString(sum[:8]))
	if b, err := os.ReadFile(bin); err == nil {
		return b, gover
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}

	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte(goTestMod), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte(goTestSrc), 0o644)
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-trimpath", "-o", "goapp", "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = src, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(src, "goapp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return b, gover
}

// golden compares inv with testdata/NAME.golden.json (rewritten with
// -update). Layer diffIDs are written as "layer N" (N = index in ids) and
// each key of subst is replaced by its value, so that the file holds only
// what is meant.
func golden(t *testing.T, name string, inv *inventory.Inventory, ids []string, subst map[string]string) {
	t.Helper()
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got := string(b) + "\n"
	for i, id := range ids {
		if id != "" {
			got = strings.ReplaceAll(got, id, fmt.Sprintf("layer %d", i))
		}
	}
	for k, v := range subst {
		got = strings.ReplaceAll(got, k, v)
	}
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("inventory differs from %s (go test -update rewrites it):\n%s", path, diffLines(string(want), got))
	}
}

// diffLines lists the lines only in want (-) and only in got (+).
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// diffIDs returns the image's layer diffIDs from its config.
func diffIDs(t testing.TB, img v1.Image) []string {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range cf.RootFS.DiffIDs {
		ids = append(ids, d.String())
	}
	return ids
}

// find returns the inventory's packages of ecosystem eco named name.
func find(inv *inventory.Inventory, eco, name string) []inventory.Package {
	var out []inventory.Package
	for _, p := range inv.Packages {
		if p.Ecosystem == eco && p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

func newExtractor(t testing.TB, cfg Config) *Extractor {
	t.Helper()
	x, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
