package e2e_test

import (
	"archive/tar"
	"bytes"
	"context"
	_ "crypto/sha256" // go-digest's sha256
	_ "crypto/sha512" // go-digest's sha512
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// regAPI makes raw distribution-API requests to a plain-HTTP server as its
// administrator (Basic credentials on every request), for tests that check
// exactly what the server answers rather than what a client makes of it.
type regAPI struct {
	base       string // http://host:port
	user, pass string
	client     *http.Client
}

// newRegAPI returns a regAPI for srv.
func newRegAPI(srv *harness.Server) *regAPI {
	return &regAPI{
		base: srv.URL(), user: srv.Username, pass: srv.Password,
		client: &http.Client{
			Timeout: 2 * time.Minute,
			// Upload Locations and blob redirects are followed by hand.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// apiResponse is a response read to its end.
type apiResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// String describes the response for test messages (the body cut short).
func (r apiResponse) String() string {
	b := r.Body
	if len(b) > 512 {
		b = b[:512]
	}
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(b))
}

// call sends method path (relative to the server, e.g. "/v2/p/r/tags/list"
// or an upload Location) with body and header pairs ("Key", "value", ...)
// and returns the response read to its end; a transport error is returned
// as such.
func (a *regAPI) call(method, path string, body io.Reader, header ...string) (apiResponse, error) {
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		return apiResponse{}, err
	}
	req.SetBasicAuth(a.user, a.pass)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if b, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(b.Len())
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// must is call that fails the test on a transport error or a status other
// than want.
func (a *regAPI) must(t testing.TB, want int, method, path string, body []byte, header ...string) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := a.call(method, path, rd, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if r.Status != want {
		t.Fatalf("%s %s: got %s, want %d", method, path, r, want)
	}
	return r
}

// blobIntact returns nil if blob d of repo is served with exactly size
// bytes that hash to d, and otherwise says what is wrong.
func (a *regAPI) blobIntact(repo string, d digest.Digest, size int64) error {
	req, err := http.NewRequest(http.MethodGet, a.base+"/v2/"+repo+"/blobs/"+d.String(), nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.user, a.pass)
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET blob %s of %s: %w", d, repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET blob %s of %s: %d %s", d, repo, resp.StatusCode, bytes.TrimSpace(b))
	}
	v := d.Verifier()
	n, err := io.Copy(v, resp.Body)
	switch {
	case err != nil:
		return fmt.Errorf("GET blob %s of %s: reading after %d bytes: %w", d, repo, n, err)
	case n != size:
		return fmt.Errorf("blob %s of %s has %d bytes, want %d", d, repo, n, size)
	case !v.Verified():
		return fmt.Errorf("blob %s of %s: its %d bytes do not hash to its digest", d, repo, n)
	}
	return nil
}

// blobAbsent returns nil if HEAD of blob d in repo answers 404, and
// otherwise says what it answered.
func (a *regAPI) blobAbsent(repo string, d digest.Digest) error {
	r, err := a.call(http.MethodHead, "/v2/"+repo+"/blobs/"+d.String(), nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusNotFound {
		return fmt.Errorf("HEAD blob %s of %s: %d (Content-Length %s), want 404", d, repo, r.Status, r.Header.Get("Content-Length"))
	}
	return nil
}

// catalog returns every repository of the registry, following Link pages.
func (a *regAPI) catalog(t testing.TB) []string {
	t.Helper()
	return a.pages(t, "/v2/_catalog?n=100", "repositories")
}

// tags returns every tag of repo, following Link pages.
func (a *regAPI) tags(t testing.TB, repo string) []string {
	t.Helper()
	return a.pages(t, "/v2/"+repo+"/tags/list?n=100", "tags")
}

// pages GETs path and the pages its Link headers name, collecting the
// string list under key of each JSON body.
func (a *regAPI) pages(t testing.TB, path, key string) []string {
	t.Helper()
	var out []string
	for i := 0; path != ""; i++ {
		if i > 1000 {
			t.Fatalf("%s: more than 1000 pages", path)
		}
		r := a.must(t, http.StatusOK, http.MethodGet, path, nil)
		var page map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &page); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, r.Body)
		}
		var names []string
		if raw, ok := page[key]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &names); err != nil {
				t.Fatalf("GET %s: %q: %v", path, key, err)
			}
		}
		out = append(out, names...)
		path = nextLink(r.Header.Get("Link"))
	}
	return out
}

// nextLink returns the target of a `<url>; rel="next"` Link header, or "".
func nextLink(h string) string {
	if h == "" || h[0] != '<' {
		return ""
	}
	end := bytes.IndexByte([]byte(h), '>')
	if end < 0 {
		return ""
	}
	return h[1:end]
}

// manifestIntact fetches the manifest that ref (a tag or digest) names in
// repo and checks that it and every blob it names (config, layers, or the
// manifests of an index) are served whole. It returns the manifest's digest.
func (a *regAPI) manifestIntact(repo, ref string) (digest.Digest, error) {
	r, err := a.call(http.MethodGet, "/v2/"+repo+"/manifests/"+ref, nil,
		"Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "+
			"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
	if err != nil {
		return "", err
	}
	if r.Status != http.StatusOK {
		return "", fmt.Errorf("GET manifest %s:%s: %s", repo, ref, r)
	}
	d, err := digest.Parse(r.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return "", fmt.Errorf("GET manifest %s:%s: Docker-Content-Digest: %v", repo, ref, err)
	}
	if got := d.Algorithm().FromBytes(r.Body); got != d {
		return d, fmt.Errorf("manifest %s:%s hashes to %s, served as %s", repo, ref, got, d)
	}
	var m struct {
		MediaType string          `json:"mediaType"`
		Config    *v1.Descriptor  `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return d, fmt.Errorf("manifest %s:%s: %v", repo, ref, err)
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, b := range blobs {
		if err := a.blobIntact(repo, digest.Digest(b.Digest.String()), b.Size); err != nil {
			return d, fmt.Errorf("manifest %s:%s: %w", repo, ref, err)
		}
	}
	for _, c := range m.Manifests {
		if _, err := a.manifestIntact(repo, c.Digest.String()); err != nil {
			return d, fmt.Errorf("index %s:%s: %w", repo, ref, err)
		}
	}
	return d, nil
}

// randomLayer returns an uncompressed tar layer holding one file of size
// random bytes from src. A real tar, so that whatever reads layers (the
// scanner) sees a valid one; uncompressed, so that making it costs no
// compression.
func randomLayer(t testing.TB, src *rand.ChaCha8, size int) v1.Layer {
	t.Helper()
	data := make([]byte, size)
	_, _ = src.Read(data) // ChaCha8.Read never fails
	var buf bytes.Buffer
	buf.Grow(size + 3*512)
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: "data.bin", Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer)
}

// randomImage returns an OCI image whose layers hold files of the given
// sizes of random bytes drawn from a generator seeded with seed.
func randomImage(t testing.TB, seed uint64, layerSizes ...int) v1.Image {
	t.Helper()
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	src := rand.NewChaCha8(key)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, size := range layerSizes {
		var err error
		if img, err = mutate.AppendLayers(img, randomLayer(t, src, size)); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{"customs.test.seed": strconv.FormatUint(seed, 10)}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// imageBlobs returns the descriptors of img's config and layers.
func imageBlobs(t testing.TB, img v1.Image) []v1.Descriptor {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return append([]v1.Descriptor{m.Config}, m.Layers...)
}

// writeImageLayout writes img into a new OCI layout directory, its one
// manifest annotated with tag as its reference name (what skopeo's
// oci:DIR:TAG looks up), and returns the directory.
func writeImageLayout(t testing.TB, img v1.Image, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pushImage pushes img to ref (host/repo:tag) on a plain-HTTP server with
// go-containerregistry as the administrator (its Bearer token flow), with
// go-containerregistry's default retries, and returns the error.
func pushImage(ctx context.Context, srv *harness.Server, ref string, img v1.Image, opts ...remote.Option) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	opts = append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: srv.Username, Password: srv.Password})),
	}, opts...)
	return remote.Write(r, img, opts...)
}
