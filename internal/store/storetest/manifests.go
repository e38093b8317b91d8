package storetest

import (
	"cmp"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// sameManifest fails unless got has want's stored fields.
func sameManifest(t *testing.T, got, want *store.Manifest) {
	t.Helper()
	if got.Repository != want.Repository || got.Digest != want.Digest || got.MediaType != want.MediaType ||
		got.Size != want.Size || got.ArtifactType != want.ArtifactType || got.Subject != want.Subject {
		t.Errorf("manifest = %+v\nwant       %+v", got, want)
	}
	if len(got.Annotations) != len(want.Annotations) || !maps.Equal(got.Annotations, want.Annotations) {
		t.Errorf("annotations = %v, want %v", got.Annotations, want.Annotations)
	}
	if !slices.Equal(got.References, want.References) {
		t.Errorf("references = %+v\nwant         %+v", got.References, want.References)
	}
}

var manifestTests = []test{
	{"put and get", func(t *testing.T, e *env) {
		e.project("p")
		m := e.imageManifest("p/r", "img")
		m.Annotations = map[string]string{"org.opencontainers.image.created": "2026-01-01", "k": "v"}
		// A layer used twice, an optional foreign layer, and an absent
		// optional one: all kept, in order.
		m.References = append(m.References,
			m.References[1],
			store.Reference{Digest: dig("foreign"), Kind: store.RefBlob, Required: false})
		e.clk.Advance(time.Second)
		ok(t, e.s.PutManifest(e.ctx, m, []string{"v1"}))
		sameTime(t, "CreatedAt", m.CreatedAt, t0.Add(time.Second))

		got, err := e.s.Manifest(e.ctx, "p/r", m.Digest)
		ok(t, err)
		sameManifest(t, got, m)
		sameTime(t, "stored CreatedAt", got.CreatedAt, t0.Add(time.Second))

		_, err = e.s.Manifest(e.ctx, "p/r", dig("other"))
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		_, err = e.s.Manifest(e.ctx, "p/other", m.Digest)
		wantCode(t, err, apperr.ENOTFOUND, "", "")
	}},
	{"put creates the repository", func(t *testing.T, e *env) {
		e.project("p")
		self := dig("empty")
		ok(t, e.s.PutBlob(e.ctx, self, 5))
		m := &store.Manifest{Repository: "p/new", Digest: self, MediaType: "application/vnd.oci.image.index.v1+json", Size: 5}
		ok(t, e.s.PutManifest(e.ctx, m, nil))
		if _, err := e.s.Repository(e.ctx, "p/new"); err != nil {
			t.Error(err)
		}
	}},
	{"refused puts store nothing", func(t *testing.T, e *env) {
		e.project("p")
		e.project("q")
		base := e.image("p/r", "base", "keep")
		elsewhere := e.blob("p/other", "elsewhere")
		recordedOnly := dig("recorded only")
		ok(t, e.s.PutBlob(e.ctx, recordedOnly, 13))
		ok(t, e.s.PutBlob(e.ctx, dig("new"), 3))
		ok(t, e.s.PutBlob(e.ctx, dig("q/new"), 5))

		for _, tc := range []struct {
			name         string
			repo         string
			self         digest.Digest
			refs         []store.Reference
			code, detail string
			mention      string
		}{
			{"missing project", "nope/r", dig("new"), nil, apperr.ENOTFOUND, "", "nope"},
			{"own blob not recorded", "p/r", dig("unrecorded"), nil,
				apperr.EINVALID, "MANIFEST_BLOB_UNKNOWN", string(dig("unrecorded"))},
			{"required blob not recorded", "p/r", dig("new"),
				[]store.Reference{{Digest: dig("absent"), Kind: store.RefBlob, Required: true}},
				apperr.EINVALID, "MANIFEST_BLOB_UNKNOWN", string(dig("absent"))},
			{"required blob recorded but not linked", "p/r", dig("new"),
				[]store.Reference{{Digest: recordedOnly, Kind: store.RefBlob, Required: true}},
				apperr.EINVALID, "MANIFEST_BLOB_UNKNOWN", string(recordedOnly)},
			{"required blob linked in another repository", "p/r", dig("new"),
				[]store.Reference{
					base.References[0],
					{Digest: elsewhere, Kind: store.RefBlob, Required: true},
				},
				apperr.EINVALID, "MANIFEST_BLOB_UNKNOWN", string(elsewhere)},
			{"required child manifest absent", "p/r", dig("new"),
				[]store.Reference{{Digest: dig("child"), Kind: store.RefManifest, Required: true}},
				apperr.EINVALID, "MANIFEST_BLOB_UNKNOWN", string(dig("child"))},
			{"required child manifest in another repository", "p/other", dig("new"),
				[]store.Reference{{Digest: base.Digest, Kind: store.RefManifest, Required: true}},
				apperr.EINVALID, "MANIFEST_BLOB_UNKNOWN", string(base.Digest)},
			{"child manifest is a blob, not a manifest", "p/r", dig("new"),
				[]store.Reference{{Digest: base.References[0].Digest, Kind: store.RefManifest, Required: true}},
				apperr.EINVALID, "MANIFEST_BLOB_UNKNOWN", string(base.References[0].Digest)},
			{"in a new repository of another project", "q/new", dig("q/new"),
				[]store.Reference{{Digest: base.References[0].Digest, Kind: store.RefBlob, Required: true}},
				apperr.EINVALID, "MANIFEST_BLOB_UNKNOWN", string(base.References[0].Digest)},
			{"invalid digest", "p/r", "sha256:bad", nil, apperr.EINVALID, "", ""},
			{"invalid reference kind", "p/r", dig("new"),
				[]store.Reference{{Digest: dig("x"), Kind: "layer"}}, apperr.EINVALID, "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := &store.Manifest{Repository: tc.repo, Digest: tc.self, MediaType: "m", Size: 3, References: tc.refs}
				err := e.s.PutManifest(e.ctx, m, []string{"keep", "new"})
				wantCode(t, err, tc.code, tc.detail, tc.mention)
				if _, err := e.s.Manifest(e.ctx, tc.repo, tc.self); apperr.Code(err) != apperr.ENOTFOUND {
					t.Errorf("refused manifest is stored (err %v)", err)
				}
				if tag, err := e.s.Tag(e.ctx, "p/r", "keep"); err != nil || tag.Digest != base.Digest {
					t.Errorf("refused put moved tag keep: %+v, %v", tag, err)
				}
				if _, err := e.s.Tag(e.ctx, tc.repo, "new"); apperr.Code(err) != apperr.ENOTFOUND {
					t.Errorf("refused put created tag new (err %v)", err)
				}
			})
		}
		if _, err := e.s.Repository(e.ctx, "q/new"); apperr.Code(err) != apperr.ENOTFOUND {
			t.Errorf("a refused put created its repository (err %v)", err)
		}
	}},
	{"optional references need not exist", func(t *testing.T, e *env) {
		e.project("p")
		m := e.imageManifest("p/r", "img")
		m.References = append(m.References,
			store.Reference{Digest: dig("nondistributable"), Kind: store.RefBlob},
			store.Reference{Digest: dig("platform child"), Kind: store.RefManifest})
		ok(t, e.s.PutManifest(e.ctx, m, nil))
		got, err := e.s.Manifest(e.ctx, "p/r", m.Digest)
		ok(t, err)
		sameManifest(t, got, m)
	}},
	{"index with child manifests", func(t *testing.T, e *env) {
		e.project("p")
		amd := e.image("p/r", "amd64")
		arm := e.image("p/r", "arm64")
		ok(t, e.s.PutBlob(e.ctx, dig("index"), 5))
		idx := &store.Manifest{Repository: "p/r", Digest: dig("index"), MediaType: "application/vnd.oci.image.index.v1+json", Size: 5,
			References: []store.Reference{
				{Digest: amd.Digest, Kind: store.RefManifest, Required: true},
				{Digest: arm.Digest, Kind: store.RefManifest, Required: true},
			}}
		ok(t, e.s.PutManifest(e.ctx, idx, []string{"latest"}))
		got, err := e.s.Manifest(e.ctx, "p/r", idx.Digest)
		ok(t, err)
		sameManifest(t, got, idx)
	}},
	{"re-put is idempotent", func(t *testing.T, e *env) {
		e.project("p")
		m := e.image("p/r", "img", "a")
		e.clk.Advance(time.Minute)
		again := *m
		again.References = slices.Clone(m.References)
		ok(t, e.s.PutManifest(e.ctx, &again, []string{"a", "b", "a"}))
		sameTime(t, "CreatedAt after re-put", again.CreatedAt, t0)
		got, err := e.s.Manifest(e.ctx, "p/r", m.Digest)
		ok(t, err)
		sameManifest(t, got, m)
		sameTime(t, "stored CreatedAt", got.CreatedAt, t0)
		tags, err := e.s.Tags(e.ctx, "p/r", store.Page{})
		ok(t, err)
		if !slices.Equal(tags, []string{"a", "b"}) {
			t.Errorf("Tags = %q", tags)
		}
	}},
	{"same digest in two repositories", func(t *testing.T, e *env) {
		e.project("p")
		a := e.image("p/a", "img", "t")
		b := e.image("p/b", "img", "t")
		if a.Digest != b.Digest {
			t.Fatal("fixture: digests differ")
		}
		ok(t, e.s.DeleteManifest(e.ctx, "p/a", a.Digest))
		got, err := e.s.Manifest(e.ctx, "p/b", b.Digest)
		ok(t, err)
		sameManifest(t, got, b)
		if _, err := e.s.Tag(e.ctx, "p/b", "t"); err != nil {
			t.Errorf("deleting p/a's manifest removed p/b's tag: %v", err)
		}
	}},
	{"delete removes its tags only", func(t *testing.T, e *env) {
		e.project("p")
		m1 := e.image("p/r", "one", "v1", "latest")
		m2 := e.image("p/r", "two", "v2")
		ok(t, e.s.DeleteManifest(e.ctx, "p/r", m1.Digest))
		_, err := e.s.Manifest(e.ctx, "p/r", m1.Digest)
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		for _, tag := range []string{"v1", "latest"} {
			_, err := e.s.Tag(e.ctx, "p/r", tag)
			wantCode(t, err, apperr.ENOTFOUND, "", tag)
		}
		tags, err := e.s.Tags(e.ctx, "p/r", store.Page{})
		ok(t, err)
		if !slices.Equal(tags, []string{"v2"}) {
			t.Errorf("Tags after delete = %q", tags)
		}
		if _, err := e.s.Manifest(e.ctx, "p/r", m2.Digest); err != nil {
			t.Error(err)
		}
		wantCode(t, e.s.DeleteManifest(e.ctx, "p/r", m1.Digest), apperr.ENOTFOUND, "", "")
		wantCode(t, e.s.DeleteManifest(e.ctx, "p/none", m1.Digest), apperr.ENOTFOUND, "", "")

		// It can be pushed again.
		ok(t, e.s.PutManifest(e.ctx, m1, []string{"v1"}))
		got, err := e.s.Manifest(e.ctx, "p/r", m1.Digest)
		ok(t, err)
		sameManifest(t, got, m1)
	}},
}

var tagTests = []test{
	{"tags move between manifests", func(t *testing.T, e *env) {
		e.project("p")
		m1 := e.image("p/r", "one", "latest", "stable")
		tag, err := e.s.Tag(e.ctx, "p/r", "latest")
		ok(t, err)
		if tag.Digest != m1.Digest || tag.Name != "latest" || tag.Repository != "p/r" {
			t.Errorf("Tag = %+v", tag)
		}
		sameTime(t, "UpdatedAt", tag.UpdatedAt, t0)

		e.clk.Advance(time.Hour)
		m2 := e.image("p/r", "two", "latest")
		tag, err = e.s.Tag(e.ctx, "p/r", "latest")
		ok(t, err)
		if tag.Digest != m2.Digest {
			t.Errorf("latest -> %s, want %s", tag.Digest, m2.Digest)
		}
		sameTime(t, "UpdatedAt after move", tag.UpdatedAt, t0.Add(time.Hour))
		tag, err = e.s.Tag(e.ctx, "p/r", "stable")
		ok(t, err)
		if tag.Digest != m1.Digest {
			t.Errorf("stable moved to %s", tag.Digest)
		}
		// m1 keeps its manifest; deleting it now leaves latest alone.
		ok(t, e.s.DeleteManifest(e.ctx, "p/r", m1.Digest))
		if tag, err := e.s.Tag(e.ctx, "p/r", "latest"); err != nil || tag.Digest != m2.Digest {
			t.Errorf("latest after deleting m1 = %+v, %v", tag, err)
		}
	}},
	{"names are case-sensitive", func(t *testing.T, e *env) {
		e.project("p")
		m1 := e.image("p/r", "one", "latest")
		m2 := e.image("p/r", "two", "Latest")
		for tag, want := range map[string]digest.Digest{"latest": m1.Digest, "Latest": m2.Digest} {
			got, err := e.s.Tag(e.ctx, "p/r", tag)
			ok(t, err)
			if got.Digest != want {
				t.Errorf("%s -> %s, want %s", tag, got.Digest, want)
			}
		}
		_, err := e.s.Tag(e.ctx, "p/r", "LATEST")
		wantCode(t, err, apperr.ENOTFOUND, "", "LATEST")
	}},
	{"list pages in byte order", func(t *testing.T, e *env) {
		e.project("p")
		e.image("p/r", "img", shuffled(byteOrdered)...)
		e.image("p/s", "img", "other")
		checkPages(t, byteOrdered, func(p store.Page) ([]string, error) {
			return e.s.Tags(e.ctx, "p/r", p)
		})
	}},
	{"list of a repository without tags", func(t *testing.T, e *env) {
		e.project("p")
		e.image("p/r", "img")
		tags, err := e.s.Tags(e.ctx, "p/r", store.Page{})
		ok(t, err)
		if len(tags) != 0 {
			t.Errorf("Tags = %q", tags)
		}
		_, err = e.s.Tags(e.ctx, "p/none", store.Page{})
		wantCode(t, err, apperr.ENOTFOUND, "", "p/none")
	}},
	{"delete", func(t *testing.T, e *env) {
		e.project("p")
		m := e.image("p/r", "img", "a", "b")
		ok(t, e.s.DeleteTag(e.ctx, "p/r", "a"))
		_, err := e.s.Tag(e.ctx, "p/r", "a")
		wantCode(t, err, apperr.ENOTFOUND, "", "a")
		if _, err := e.s.Manifest(e.ctx, "p/r", m.Digest); err != nil {
			t.Errorf("DeleteTag removed the manifest: %v", err)
		}
		if _, err := e.s.Tag(e.ctx, "p/r", "b"); err != nil {
			t.Errorf("DeleteTag removed another tag: %v", err)
		}
		wantCode(t, e.s.DeleteTag(e.ctx, "p/r", "a"), apperr.ENOTFOUND, "", "a")
		wantCode(t, e.s.DeleteTag(e.ctx, "p/none", "b"), apperr.ENOTFOUND, "", "")
		_, err = e.s.Tag(e.ctx, "p/none", "b")
		wantCode(t, err, apperr.ENOTFOUND, "", "")
	}},
}

var referrerTests = []test{
	{"by subject and artifact type", func(t *testing.T, e *env) {
		e.project("p")
		subject := e.image("p/r", "subject")
		var want []*store.Manifest
		for i, at := range []string{"application/vnd.a", "application/vnd.b", "application/vnd.a"} {
			name := "referrer" + string(rune('0'+i))
			m := e.imageManifest("p/r", name)
			m.ArtifactType = at
			m.Subject = subject.Digest
			m.Annotations = map[string]string{"n": name}
			ok(t, e.s.PutManifest(e.ctx, m, nil))
			want = append(want, m)
		}
		slices.SortFunc(want, func(a, b *store.Manifest) int { return cmp.Compare(a.Digest, b.Digest) })
		// Not referrers of subject in p/r: another subject, another repository.
		other := e.imageManifest("p/r", "unrelated")
		other.Subject = dig("something else")
		ok(t, e.s.PutManifest(e.ctx, other, nil))
		elsewhere := e.imageManifest("p/s", "referrer0")
		elsewhere.Subject = subject.Digest
		ok(t, e.s.PutManifest(e.ctx, elsewhere, nil))

		for _, tc := range []struct {
			name, artifactType string
			want               []*store.Manifest
		}{
			{"all", "", want},
			{"filtered", "application/vnd.a", filter(want, "application/vnd.a")},
			{"filtered to none", "application/vnd.none", nil},
		} {
			got, err := e.s.Referrers(e.ctx, "p/r", subject.Digest, tc.artifactType)
			ok(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("%s: %d referrers, want %d", tc.name, len(got), len(tc.want))
			}
			for i := range got {
				sameManifest(t, &got[i], tc.want[i])
			}
		}
	}},
	{"subject need not exist", func(t *testing.T, e *env) {
		e.project("p")
		m := e.imageManifest("p/r", "early")
		m.Subject = dig("pushed later")
		ok(t, e.s.PutManifest(e.ctx, m, nil))
		got, err := e.s.Referrers(e.ctx, "p/r", dig("pushed later"), "")
		ok(t, err)
		if len(got) != 1 || got[0].Digest != m.Digest {
			t.Errorf("Referrers = %+v", got)
		}
		got, err = e.s.Referrers(e.ctx, "p/r", dig("nothing"), "")
		ok(t, err)
		if len(got) != 0 {
			t.Errorf("Referrers(nothing) = %+v", got)
		}
		got, err = e.s.Referrers(e.ctx, "p/none", dig("pushed later"), "")
		ok(t, err)
		if len(got) != 0 {
			t.Errorf("Referrers in a missing repository = %+v", got)
		}
	}},
	{"deleted referrer is gone", func(t *testing.T, e *env) {
		e.project("p")
		subject := e.image("p/r", "subject")
		m := e.imageManifest("p/r", "sig")
		m.Subject = subject.Digest
		ok(t, e.s.PutManifest(e.ctx, m, nil))
		ok(t, e.s.DeleteManifest(e.ctx, "p/r", m.Digest))
		got, err := e.s.Referrers(e.ctx, "p/r", subject.Digest, "")
		ok(t, err)
		if len(got) != 0 {
			t.Errorf("Referrers after delete = %+v", got)
		}
	}},
}

func filter(ms []*store.Manifest, artifactType string) []*store.Manifest {
	var out []*store.Manifest
	for _, m := range ms {
		if m.ArtifactType == artifactType {
			out = append(out, m)
		}
	}
	return out
}
