package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var blobTests = []test{
	{"put records and touches", func(t *testing.T, e *env) {
		d := dig("hello")
		_, err := e.s.Blob(e.ctx, d)
		wantCode(t, err, apperr.ENOTFOUND, "", string(d))

		ok(t, e.s.PutBlob(e.ctx, d, 5))
		b, err := e.s.Blob(e.ctx, d)
		ok(t, err)
		if b.Digest != d || b.Size != 5 {
			t.Errorf("Blob = %+v", b)
		}
		sameTime(t, "CreatedAt", b.CreatedAt, t0)
		sameTime(t, "TouchedAt", b.TouchedAt, t0)

		e.clk.Advance(time.Hour)
		ok(t, e.s.PutBlob(e.ctx, d, 5))
		b, err = e.s.Blob(e.ctx, d)
		ok(t, err)
		sameTime(t, "CreatedAt after re-put", b.CreatedAt, t0)
		sameTime(t, "TouchedAt after re-put", b.TouchedAt, t0.Add(time.Hour))
		if b.Size != 5 {
			t.Errorf("Size after re-put = %d", b.Size)
		}
	}},
	{"touch never moves back", func(t *testing.T, e *env) {
		d := dig("skew")
		ok(t, e.s.PutBlob(e.ctx, d, 4))
		e.project("p")
		e.clk.Advance(-time.Hour) // another replica's clock is behind
		ok(t, e.s.PutBlob(e.ctx, d, 4))
		ok(t, e.s.LinkBlob(e.ctx, "p/r", d))
		b, err := e.s.Blob(e.ctx, d)
		ok(t, err)
		sameTime(t, "TouchedAt", b.TouchedAt, t0)
	}},
	{"invalid input", func(t *testing.T, e *env) {
		e.project("p")
		for _, tc := range []struct {
			name string
			err  error
		}{
			{"PutBlob bad digest", e.s.PutBlob(e.ctx, "sha256:nothex", 1)},
			{"PutBlob no algorithm", e.s.PutBlob(e.ctx, "abc", 1)},
			{"PutBlob negative size", e.s.PutBlob(e.ctx, dig("x"), -1)},
			{"LinkBlob bad digest", e.s.LinkBlob(e.ctx, "p/r", "sha256:short")},
		} {
			if apperr.Code(tc.err) != apperr.EINVALID {
				t.Errorf("%s: error %v, want EINVALID", tc.name, tc.err)
			}
		}
		if n, _, err := e.s.BlobStats(e.ctx); err != nil || n != 0 {
			t.Errorf("after invalid input BlobStats = %d, %v; want 0 blobs", n, err)
		}
	}},
	{"put linked", func(t *testing.T, e *env) {
		d := dig("linked")
		err := e.s.PutLinkedBlob(e.ctx, "nope/r", d, 6)
		wantCode(t, err, apperr.ENOTFOUND, "", "nope")
		if _, err := e.s.Blob(e.ctx, d); apperr.Code(err) != apperr.ENOTFOUND {
			t.Errorf("a refused PutLinkedBlob recorded the blob (err %v)", err)
		}
		e.project("p")
		ok(t, e.s.PutLinkedBlob(e.ctx, "p/r", d, 6))
		b, err := e.s.LinkedBlob(e.ctx, "p/r", d)
		ok(t, err)
		if b.Size != 6 {
			t.Errorf("LinkedBlob = %+v", b)
		}
		e.clk.Advance(time.Minute)
		ok(t, e.s.PutLinkedBlob(e.ctx, "p/r", d, 6)) // idempotent, touches
		b, err = e.s.Blob(e.ctx, d)
		ok(t, err)
		sameTime(t, "TouchedAt after re-put", b.TouchedAt, t0.Add(time.Minute))
		if err := e.s.PutLinkedBlob(e.ctx, "p/r", "sha256:short", 1); apperr.Code(err) != apperr.EINVALID {
			t.Errorf("bad digest: %v", err)
		}
	}},
	{"put linked concurrently", func(t *testing.T, e *env) {
		// Concurrent pushes, as a registry commits them: each call gets its
		// own outcome even when the store commits several together.
		e.project("p")
		cancelled, cancel := context.WithCancel(e.ctx)
		cancel()
		type call struct {
			ctx      context.Context
			repo     string
			d        digest.Digest
			wantCode string
		}
		var calls []call
		for i := range 40 {
			c := call{e.ctx, fmt.Sprintf("p/r%d", i%4), dig(fmt.Sprint("concurrent ", i)), ""}
			switch i % 10 {
			case 3:
				c.repo, c.wantCode = "nope/r", apperr.ENOTFOUND // project missing
			case 7:
				c.ctx, c.wantCode = cancelled, apperr.EUNAVAILABLE
			}
			calls = append(calls, c)
		}
		errs := make([]error, len(calls))
		var wg sync.WaitGroup
		for i, c := range calls {
			wg.Go(func() { errs[i] = e.s.PutLinkedBlob(c.ctx, c.repo, c.d, int64(i)) })
		}
		wg.Wait()
		for i, c := range calls {
			if got := apperr.Code(errs[i]); got != c.wantCode {
				t.Errorf("call %d (%s): error %v, want code %q", i, c.repo, errs[i], c.wantCode)
			}
			b, err := e.s.LinkedBlob(e.ctx, c.repo, c.d)
			switch {
			case c.wantCode == "" && (err != nil || b.Size != int64(i)):
				t.Errorf("call %d: LinkedBlob = %+v, %v; want size %d", i, b, err, i)
			case c.wantCode != "":
				if _, err := e.s.Blob(e.ctx, c.d); apperr.Code(err) != apperr.ENOTFOUND {
					t.Errorf("failed call %d recorded its blob (err %v)", i, err)
				}
			}
		}
	}},
	{"sha512 digests", func(t *testing.T, e *env) {
		d := digest.SHA512.FromString("big")
		ok(t, e.s.PutBlob(e.ctx, d, 3))
		e.project("p")
		ok(t, e.s.LinkBlob(e.ctx, "p/r", d))
		if _, err := e.s.LinkedBlob(e.ctx, "p/r", d); err != nil {
			t.Error(err)
		}
	}},
	{"link", func(t *testing.T, e *env) {
		e.project("p")
		d := dig("layer")
		err := e.s.LinkBlob(e.ctx, "p/r", d)
		wantCode(t, err, apperr.ENOTFOUND, "", string(d))
		if _, err := e.s.Repository(e.ctx, "p/r"); apperr.Code(err) != apperr.ENOTFOUND {
			t.Errorf("a refused link created the repository (err %v)", err)
		}

		ok(t, e.s.PutBlob(e.ctx, d, 5))
		err = e.s.LinkBlob(e.ctx, "nope/r", d)
		wantCode(t, err, apperr.ENOTFOUND, "", "nope")

		e.clk.Advance(time.Minute)
		ok(t, e.s.LinkBlob(e.ctx, "p/r", d))
		ok(t, e.s.LinkBlob(e.ctx, "p/r", d)) // idempotent
		b, err := e.s.LinkedBlob(e.ctx, "p/r", d)
		ok(t, err)
		if b.Digest != d || b.Size != 5 {
			t.Errorf("LinkedBlob = %+v", b)
		}
		sameTime(t, "TouchedAt after link", b.TouchedAt, t0.Add(time.Minute))

		r, err := e.s.Repository(e.ctx, "p/r")
		ok(t, err)
		p, _ := e.s.Project(e.ctx, "p")
		if r.Name != "p/r" || r.ID == 0 || r.ProjectID != p.ID {
			t.Errorf("Repository = %+v, project ID %d", r, p.ID)
		}
		sameTime(t, "repository CreatedAt", r.CreatedAt, t0.Add(time.Minute))

		_, err = e.s.LinkedBlob(e.ctx, "p/other", d)
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		_, err = e.s.LinkedBlob(e.ctx, "p/R", d)
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		_, err = e.s.LinkedBlob(e.ctx, "p/r", dig("other"))
		wantCode(t, err, apperr.ENOTFOUND, "", "")
	}},
	{"unlink", func(t *testing.T, e *env) {
		e.project("p")
		d := e.blob("p/a", "layer")
		ok(t, e.s.LinkBlob(e.ctx, "p/b", d))
		ok(t, e.s.UnlinkBlob(e.ctx, "p/a", d))
		_, err := e.s.LinkedBlob(e.ctx, "p/a", d)
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		if _, err := e.s.LinkedBlob(e.ctx, "p/b", d); err != nil {
			t.Errorf("unlinking from p/a unlinked from p/b: %v", err)
		}
		if _, err := e.s.Blob(e.ctx, d); err != nil {
			t.Errorf("unlinking removed the blob record: %v", err)
		}
		wantCode(t, e.s.UnlinkBlob(e.ctx, "p/a", d), apperr.ENOTFOUND, "", "")
		wantCode(t, e.s.UnlinkBlob(e.ctx, "p/none", d), apperr.ENOTFOUND, "", "")
	}},
	{"repositories with blob", func(t *testing.T, e *env) {
		e.project("p")
		e.project("q")
		d := dig("shared")
		ok(t, e.s.PutBlob(e.ctx, d, 6))
		for _, r := range []string{"q/z", "p/b", "p/a", "q/a"} {
			ok(t, e.s.LinkBlob(e.ctx, r, d))
		}
		e.blob("p/c", "not shared")
		for _, tc := range []struct {
			name  string
			limit int
			want  []string
		}{
			{"all", 0, []string{"p/a", "p/b", "q/a", "q/z"}},
			{"limited", 2, []string{"p/a", "p/b"}},
			{"limit above count", 10, []string{"p/a", "p/b", "q/a", "q/z"}},
		} {
			got, err := e.s.RepositoriesWithBlob(e.ctx, d, tc.limit)
			ok(t, err)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: RepositoriesWithBlob = %q, want %q", tc.name, got, tc.want)
			}
		}
		got, err := e.s.RepositoriesWithBlob(e.ctx, dig("unknown"), 0)
		ok(t, err)
		if len(got) != 0 {
			t.Errorf("RepositoriesWithBlob(unknown) = %q", got)
		}
	}},
	{"stats", func(t *testing.T, e *env) {
		n, size, err := e.s.BlobStats(e.ctx)
		ok(t, err)
		if n != 0 || size != 0 {
			t.Errorf("empty BlobStats = %d, %d", n, size)
		}
		ok(t, e.s.PutBlob(e.ctx, dig("a"), 10))
		ok(t, e.s.PutBlob(e.ctx, dig("b"), 32))
		ok(t, e.s.PutBlob(e.ctx, dig("a"), 10))
		n, size, err = e.s.BlobStats(e.ctx)
		ok(t, err)
		if n != 2 || size != 42 {
			t.Errorf("BlobStats = %d, %d; want 2, 42", n, size)
		}
	}},
}

var repositoryTests = []test{
	{"missing repository", func(t *testing.T, e *env) {
		_, err := e.s.Repository(e.ctx, "p/none")
		wantCode(t, err, apperr.ENOTFOUND, "", "p/none")
	}},
	{"list pages in byte order", func(t *testing.T, e *env) {
		e.project("p")
		e.project("q")
		var want []string
		for _, n := range byteOrdered {
			want = append(want, "p/"+n)
		}
		for _, n := range shuffled(want) {
			e.blob(n, "layer")
		}
		e.blob("q/x", "layer")
		checkPages(t, want, func(p store.Page) ([]string, error) {
			return e.s.Repositories(e.ctx, "p", p)
		})
		all := append(slices.Clone(want), "q/x")
		checkPages(t, all, func(p store.Page) ([]string, error) {
			return e.s.Repositories(e.ctx, "", p)
		})
		got, err := e.s.Repositories(e.ctx, "q", store.Page{})
		ok(t, err)
		if !slices.Equal(got, []string{"q/x"}) {
			t.Errorf("Repositories(q) = %q", got)
		}
		got, err = e.s.Repositories(e.ctx, "none", store.Page{})
		ok(t, err)
		if len(got) != 0 {
			t.Errorf("Repositories(none) = %q", got)
		}
	}},
	{"nested names and case", func(t *testing.T, e *env) {
		e.project("p")
		for _, n := range []string{"p/a/b/c", "p/A", "p/a"} {
			e.blob(n, "l")
		}
		got, err := e.s.Repositories(e.ctx, "p", store.Page{})
		ok(t, err)
		if want := []string{"p/A", "p/a", "p/a/b/c"}; !slices.Equal(got, want) {
			t.Errorf("Repositories = %q, want %q", got, want)
		}
	}},
}
