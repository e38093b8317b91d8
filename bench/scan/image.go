package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Packages of the mixed-language layer: real names and versions, several of
// them with known advisories in the repository's PyPI export.
var (
	pythonPackages = map[string]string{
		"requests": "2.19.0", "urllib3": "1.24.1", "PyYAML": "5.3", "Jinja2": "2.10", "Django": "2.2.0",
		"Flask": "0.12", "Werkzeug": "0.14.1", "certifi": "2018.4.16", "idna": "2.7", "chardet": "3.0.4",
		"six": "1.11.0", "setuptools": "39.0.1", "pip": "10.0.1", "wheel": "0.31.1", "MarkupSafe": "1.0",
		"click": "6.7", "itsdangerous": "0.24", "cryptography": "2.2", "cffi": "1.11.5", "pycparser": "2.18",
		"numpy": "1.16.0", "pandas": "0.23.0", "python-dateutil": "2.7.3", "pytz": "2018.4", "lxml": "4.2.1",
		"Pillow": "5.1.0", "sqlparse": "0.2.4", "paramiko": "2.4.1", "pyasn1": "0.4.3", "rsa": "3.4.2",
	}
	npmPackages = map[string]string{
		"lodash": "4.17.15", "minimist": "1.2.0", "express": "4.16.0", "body-parser": "1.18.2", "debug": "2.6.9",
		"qs": "6.5.1", "ms": "2.0.0", "mime": "1.4.1", "send": "0.16.0", "serve-static": "1.13.0",
		"cookie": "0.3.1", "ws": "5.2.0", "axios": "0.18.0", "moment": "2.22.1", "underscore": "1.9.0",
		"handlebars": "4.0.11", "marked": "0.3.19", "jquery": "3.3.1", "async": "2.6.0", "semver": "5.5.0",
		"yargs-parser": "10.0.0", "kind-of": "6.0.2", "set-value": "2.0.0", "mixin-deep": "1.3.1", "dot-prop": "4.2.0",
	}
	javaArtifacts = [][3]string{
		{"org.apache.logging.log4j", "log4j-core", "2.14.1"},
		{"com.fasterxml.jackson.core", "jackson-databind", "2.9.8"},
		{"org.springframework", "spring-core", "5.2.0.RELEASE"},
	}
	rubyGems = map[string]string{"rack": "2.2.3", "nokogiri": "1.10.4", "rails": "5.2.3"}
)

// mixedFiles is the content of the mixed-language layer: the Go binaries
// given (copied to /usr/local/bin), Python dist-info directories, installed
// node_modules, Java jars with Maven metadata, and Ruby gem specifications.
func mixedFiles(goBinaries []string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, b := range goBinaries {
		data, err := os.ReadFile(b)
		if err != nil {
			return nil, fmt.Errorf("Go binary: %w", err)
		}
		files["usr/local/bin/"+filepath.Base(b)] = data
	}
	for name, v := range pythonPackages {
		dir := "usr/local/lib/python3.11/site-packages/" + name + "-" + v + ".dist-info/"
		files[dir+"METADATA"] = fmt.Appendf(nil, "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\n", name, v, name)
		files[dir+"RECORD"] = []byte{}
	}
	for name, v := range npmPackages {
		files["srv/app/node_modules/"+name+"/package.json"] = fmt.Appendf(nil, "{\n  \"name\": %q,\n  \"version\": %q,\n  \"license\": \"MIT\"\n}\n", name, v)
	}
	files["srv/app/package.json"] = []byte("{\n  \"name\": \"app\",\n  \"version\": \"1.0.0\"\n}\n")
	for _, a := range javaArtifacts {
		jar, err := jarOf(a[0], a[1], a[2])
		if err != nil {
			return nil, err
		}
		files["srv/app/lib/"+a[1]+"-"+a[2]+".jar"] = jar
	}
	for name, v := range rubyGems {
		files["usr/local/bundle/specifications/"+name+"-"+v+".gemspec"] = fmt.Appendf(nil,
			"# -*- encoding: utf-8 -*-\nGem::Specification.new do |s|\n  s.name = %q\n  s.version = %q\nend\n", name, v)
	}
	return files, nil
}

// jarOf is a jar holding a manifest and the Maven pom.properties of
// group:artifact:version.
func jarOf(group, artifact, version string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	entries := []struct{ name, body string }{
		{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nImplementation-Title: " + artifact + "\nImplementation-Version: " + version + "\n"},
		{"META-INF/maven/" + group + "/" + artifact + "/pom.properties", "groupId=" + group + "\nartifactId=" + artifact + "\nversion=" + version + "\n"},
	}
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarOf is an uncompressed tar of files, with their parent directories.
func tarOf(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	names := make([]string, 0, len(files))
	dirs := map[string]bool{}
	for p := range files {
		names = append(names, p)
		for d := path.Dir(p); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	dirNames := make([]string, 0, len(dirs))
	for d := range dirs {
		dirNames = append(dirNames, d)
	}
	sort.Strings(dirNames)
	sort.Strings(names)
	for _, d := range dirNames {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	for _, p := range names {
		mode := int64(0o644)
		if path.Dir(p) == "usr/local/bin" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(files[p])), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[p]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeMixedImage writes to out (a new OCI layout) the image of the layout
// base (its only image) with one more layer of mixedFiles.
func writeMixedImage(base, out string, goBinaries []string) error {
	p, err := layout.FromPath(base)
	if err != nil {
		return err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if len(im.Manifests) != 1 {
		return fmt.Errorf("%s holds %d manifests, want one image", base, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return err
	}
	files, err := mixedFiles(goBinaries)
	if err != nil {
		return err
	}
	data, err := tarOf(files)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	mixed, err := mutate.AppendLayers(img, layer)
	if err != nil {
		return err
	}
	lp, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	return lp.AppendImage(mixed, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "mixed"}))
}
