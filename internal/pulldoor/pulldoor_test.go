package pulldoor_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/decide"
	"github.com/customs-dev/customs/internal/decide/decidetest"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/pulldoor"
	"github.com/customs-dev/customs/internal/registry"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const kuardPolicy = `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: project-kuard
spec:
  scope:
    projects: [kuard]
  vulnerabilities:
    maxSeverity: high
`

func putPolicy(t *testing.T, db *sqlite.DB, doc string) {
	t.Helper()
	if err := db.PutPolicy(context.Background(), &store.PolicyDocument{Name: "project-kuard", Project: "kuard", Document: doc}); err != nil {
		t.Fatal(err)
	}
}

func TestPullDoor(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), slog.New(slog.DiscardHandler), sqlite.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	door := pulldoor.New(pulldoor.Options{Manifests: db, Decider: decide.New(decide.Options{Store: db, Select: pulldoor.Selects,
		Config: policy.Config{Default: policy.Allowed, Now: clk.Now}})})

	dg := digest.FromString("kuard manifest")
	pull := registry.Pull{Principal: auth.Principal{Kind: auth.KindUser, Name: "reader"}, Host: "registry.example:5000",
		Repository: "kuard/kuard-amd64", Project: "kuard", Reference: "blue",
		Manifest: &store.Manifest{Repository: "kuard/kuard-amd64", Digest: dg}}

	// No policies: nothing to decide.
	if err := door.AllowPull(ctx, pull); err != nil {
		t.Fatalf("pull without policies: %v", err)
	}

	// A threshold and no scan: refused, scan pending.
	putPolicy(t, db, kuardPolicy)
	err = door.AllowPull(ctx, pull)
	if apperr.Code(err) != apperr.EDENIED || !strings.Contains(apperr.Message(err), "scan pending") {
		t.Fatalf("unscanned pull: %v, want EDENIED with scan pending", err)
	}

	// A critical finding: refused with the Harbor-style message.
	decidetest.PutMuslReport(t, db, dg, clk.Now())
	err = door.AllowPull(ctx, pull)
	msg := apperr.Message(err)
	for _, want := range []string{`"critical" is equal or higher than the threshold in project setting: "high"`,
		"CVE-2019-14697", "musl 1.1.20-r4", "1.1.20-r5", "customs allowlist add"} {
		if apperr.Code(err) != apperr.EDENIED || !strings.Contains(msg, want) {
			t.Fatalf("vulnerable pull: %v, want EDENIED mentioning %q", err, want)
		}
	}

	// Allowlisted until tomorrow: allowed, at once (new policy revision).
	exp := clk.Now().Add(24 * time.Hour).Format(time.RFC3339)
	putPolicy(t, db, kuardPolicy+"    allowlist:\n    - id: CVE-2019-14697\n      expires: "+exp+"\n")
	if err := door.AllowPull(ctx, pull); err != nil {
		t.Fatalf("allowlisted pull: %v", err)
	}
	// The entry expires: refused again, although the policy did not change.
	clk.Advance(25 * time.Hour)
	if err := door.AllowPull(ctx, pull); apperr.Code(err) != apperr.EDENIED {
		t.Fatalf("pull after the entry expired: %v, want EDENIED", err)
	}
	// A policy that no longer applies to the project: allowed.
	if _, err := db.DeletePolicy(ctx, "project-kuard", "admin"); err != nil {
		t.Fatal(err)
	}
	if err := door.AllowPull(ctx, pull); err != nil {
		t.Fatalf("pull after the policy was deleted: %v", err)
	}
}

// BenchmarkAllowPull compares a denied pull (critical finding over a high
// threshold) with an allowed one (the finding allowlisted) of a scanned
// image, decisions cached: the cost a blocked pull adds at the registry.
func BenchmarkAllowPull(b *testing.B) {
	for _, bc := range []struct {
		name, doc string
		denied    bool
	}{
		{"denied", kuardPolicy, true},
		{"allowed", kuardPolicy + "    allowlist:\n    - id: CVE-2019-14697\n", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "meta.db"), slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			if err := db.PutPolicy(ctx, &store.PolicyDocument{Name: "project-kuard", Project: "kuard", Document: bc.doc}); err != nil {
				b.Fatal(err)
			}
			dg := digest.FromString("m")
			decidetest.PutMuslReport(b, db, dg, time.Now())
			door := pulldoor.New(pulldoor.Options{Manifests: db, Decider: decide.New(decide.Options{Store: db, Select: pulldoor.Selects,
				Config: policy.Config{Default: policy.Allowed}})})
			pull := registry.Pull{Host: "r.example", Repository: "kuard/k", Project: "kuard", Reference: "v1",
				Manifest: &store.Manifest{Repository: "kuard/k", Digest: dg}}
			b.ResetTimer()
			for b.Loop() {
				err := door.AllowPull(ctx, pull)
				if (apperr.Code(err) == apperr.EDENIED) != bc.denied {
					b.Fatal(err)
				}
			}
		})
	}
}

// pushManifest stores a manifest of repo in db referencing the blobs
// (linked first) and returns its digest.
func pushManifest(t testing.TB, db *sqlite.DB, repo, name string, blobs ...digest.Digest) digest.Digest {
	t.Helper()
	ctx := context.Background()
	var refs []store.Reference
	for _, b := range blobs {
		if err := db.PutLinkedBlob(ctx, repo, b, 1); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, store.Reference{Digest: b, Kind: store.RefBlob, Required: true})
	}
	self := digest.FromString(name)
	if err := db.PutBlob(ctx, self, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.PutManifest(ctx, &store.Manifest{Repository: repo, Digest: self, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: 1, References: refs}, nil); err != nil {
		t.Fatal(err)
	}
	return self
}

// TestAllowBlob: a blob is refused only when every manifest of the
// repository referencing it is denied; a shared base layer stays
// servable; a blob no manifest references is served; an index is denied
// by its denied child.
func TestAllowBlob(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateProject(ctx, &store.Project{Name: "kuard"}); err != nil {
		t.Fatal(err)
	}
	door := pulldoor.New(pulldoor.Options{Manifests: db, Decider: decide.New(decide.Options{Store: db, Select: pulldoor.Selects,
		Config: policy.Config{Default: policy.Allowed}})})
	base, vulnLayer, cleanLayer := digest.FromString("base"), digest.FromString("musl layer"), digest.FromString("fixed layer")
	vuln := pushManifest(t, db, "kuard/k", "vulnerable", base, vulnLayer)
	clean := pushManifest(t, db, "kuard/k", "clean", base, cleanLayer)
	decidetest.PutMuslReport(t, db, vuln, time.Now())
	now := time.Now()
	if err := db.PutScanReport(ctx, &store.ScanReport{Digest: clean.String(), Status: store.ScanDone, VulnRevision: 3, MatchedAt: now, ScannedAt: now,
		Data: []byte(`{"digest":"` + clean.String() + `","status":"done","findings":[]}`)}); err != nil {
		t.Fatal(err)
	}
	putPolicy(t, db, kuardPolicy)
	blob := func(d digest.Digest) error {
		return door.AllowBlob(ctx, registry.BlobPull{Host: "r.example", Repository: "kuard/k", Project: "kuard", Digest: d})
	}
	if err := blob(vulnLayer); apperr.Code(err) != apperr.EDENIED || !strings.Contains(apperr.Message(err), "CVE-2019-14697") {
		t.Fatalf("the vulnerable image's own layer: %v, want EDENIED naming the CVE", err)
	}
	for name, d := range map[string]digest.Digest{"shared base layer": base, "clean layer": cleanLayer, "unreferenced blob": digest.FromString("upload")} {
		if err := blob(d); err != nil {
			t.Errorf("%s: %v, want served", name, err)
		}
	}

	// An index of both platforms is denied by the vulnerable child.
	idx := &store.Manifest{Repository: "kuard/k", Digest: digest.FromString("index"), MediaType: "application/vnd.oci.image.index.v1+json",
		References: []store.Reference{{Digest: clean, Kind: store.RefManifest}, {Digest: vuln, Kind: store.RefManifest}}}
	err = door.AllowPull(ctx, registry.Pull{Host: "r.example", Repository: "kuard/k", Project: "kuard", Reference: "v1", Manifest: idx})
	if apperr.Code(err) != apperr.EDENIED || !strings.Contains(apperr.Message(err), "Platform manifest "+vuln.String()+" of the index") {
		t.Fatalf("index pull: %v, want EDENIED naming the platform manifest", err)
	}
}

// BenchmarkAllowBlob compares a refused blob GET (its only manifest
// denied) with a served one (a shared layer, the first manifest denied and
// the second allowed): the cost the blob gate adds per blob GET, decisions
// cached.
func BenchmarkAllowBlob(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "meta.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.CreateProject(ctx, &store.Project{Name: "kuard"}); err != nil {
		b.Fatal(err)
	}
	base, vulnLayer := digest.FromString("base"), digest.FromString("musl layer")
	vuln := pushManifest(b, db, "kuard/k", "a-vulnerable", base, vulnLayer)
	clean := pushManifest(b, db, "kuard/k", "b-clean", base)
	decidetest.PutMuslReport(b, db, vuln, time.Now())
	now := time.Now()
	if err := db.PutScanReport(ctx, &store.ScanReport{Digest: clean.String(), Status: store.ScanDone, VulnRevision: 3, MatchedAt: now, ScannedAt: now,
		Data: []byte(`{"digest":"` + clean.String() + `","status":"done","findings":[]}`)}); err != nil {
		b.Fatal(err)
	}
	if err := db.PutPolicy(ctx, &store.PolicyDocument{Name: "project-kuard", Project: "kuard", Document: kuardPolicy}); err != nil {
		b.Fatal(err)
	}
	door := pulldoor.New(pulldoor.Options{Manifests: db, Decider: decide.New(decide.Options{Store: db, Select: pulldoor.Selects,
		Config: policy.Config{Default: policy.Allowed}})})
	for _, bc := range []struct {
		name   string
		blob   digest.Digest
		denied bool
	}{{"refused", vulnLayer, true}, {"served-shared", base, false}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				err := door.AllowBlob(ctx, registry.BlobPull{Host: "r.example", Repository: "kuard/k", Project: "kuard", Digest: bc.blob})
				if (apperr.Code(err) == apperr.EDENIED) != bc.denied {
					b.Fatal(err)
				}
			}
		})
	}
}
