package registry

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
)

// denyGate refuses every pull of repositories under its prefix and
// records what it was asked.
type denyGate struct {
	prefix string
	mu     sync.Mutex
	asked  []Pull
	blobs  []BlobPull
}

func (g *denyGate) AllowBlob(ctx context.Context, b BlobPull) error {
	g.mu.Lock()
	g.blobs = append(g.blobs, b)
	g.mu.Unlock()
	if strings.HasPrefix(b.Repository, g.prefix) {
		return apperr.Errorf(apperr.EDENIED, "blob %s blocked by policy", b.Digest)
	}
	return nil
}

func (g *denyGate) AllowPull(ctx context.Context, p Pull) error {
	g.mu.Lock()
	g.asked = append(g.asked, p)
	g.mu.Unlock()
	if strings.HasPrefix(p.Repository, g.prefix) {
		return apperr.Errorf(apperr.EDENIED, "blocked by policy for %s", p.Reference)
	}
	return nil
}

func TestPullGate(t *testing.T) {
	gate := &denyGate{prefix: "pub/blocked"}
	e := newEnv(t, func(o *Options) { o.PullGate = gate })
	blocked := e.pushImage("pub/blocked", "v1", "blocked", nil)
	fine := e.pushImage("pub/fine", "v1", "fine", nil)
	own := e.pushImage("p/bob/app", "v1", "own", nil)
	gate.asked = nil

	// bob may only pull pub/: the gate's refusal is a 403 DENIED with its
	// message, and an audit notice.
	r := e.do(req{method: http.MethodGet, path: "/v2/pub/blocked/manifests/v1", user: "bob"})
	e.expect(r, http.StatusForbidden, "DENIED")
	if r.message() != "blocked by policy for v1" {
		t.Errorf("message = %q", r.message())
	}
	if !slices.Contains(e.events.list(), "refused bob pub/blocked [pull] denied") {
		t.Errorf("events = %q, want the refusal", e.events.list())
	}
	// By digest too; anonymous clients as well.
	e.expect(e.do(req{method: http.MethodGet, path: "/v2/pub/blocked/manifests/" + blocked.digest.String()}), http.StatusForbidden, "DENIED")
	// HEAD is not a pull; an allowed repository pulls.
	e.expect(e.do(req{method: http.MethodHead, path: "/v2/pub/blocked/manifests/v1", user: "bob"}), http.StatusOK, "")
	e.expect(e.do(req{method: http.MethodGet, path: "/v2/pub/fine/manifests/v1", user: "bob"}), http.StatusOK, "")

	g := gate.asked
	if len(g) != 3 || g[0].Repository != "pub/blocked" || g[0].Project != "pub" || g[0].Reference != "v1" ||
		g[0].Manifest.Digest != blocked.digest || g[0].Principal.Name != "bob" || g[0].Host == "" ||
		g[1].Reference != blocked.digest.String() || g[2].Manifest.Digest != fine.digest {
		t.Fatalf("gate asked %+v", g)
	}

	// Clients with push rights are not asked: admin re-reads a blocked
	// image, bob his own.
	gate.prefix = ""
	gate.asked = nil
	e.expect(e.do(req{method: http.MethodGet, path: "/v2/pub/blocked/manifests/v1", user: "admin"}), http.StatusOK, "")
	e.expect(e.do(req{method: http.MethodGet, path: "/v2/p/bob/app/manifests/" + own.digest.String(), user: "bob"}), http.StatusOK, "")
	if len(gate.asked) != 0 {
		t.Fatalf("gate asked about pushers' pulls: %+v", gate.asked)
	}
}

// TestPullGateBlobs: blob GETs by clients without push rights ask the gate
// (refusals are 403 DENIED and audited); HEAD and pushers are not asked.
func TestPullGateBlobs(t *testing.T) {
	gate := &denyGate{prefix: "pub/blocked"}
	e := newEnv(t, func(o *Options) { o.PullGate = gate })
	e.pushImage("pub/blocked", "v1", "blocked", nil)
	e.pushImage("pub/fine", "v1", "fine", nil)
	layer := digest.FromBytes([]byte("layer of blocked"))
	fine := digest.FromBytes([]byte("layer of fine"))
	gate.blobs = nil

	r := e.do(req{method: http.MethodGet, path: "/v2/pub/blocked/blobs/" + layer.String(), user: "bob"})
	e.expect(r, http.StatusForbidden, "DENIED")
	if !strings.Contains(r.message(), "blocked by policy") {
		t.Errorf("message = %q", r.message())
	}
	if !slices.Contains(e.events.list(), "refused bob pub/blocked [pull] denied") {
		t.Errorf("events = %q, want the refusal", e.events.list())
	}
	e.expect(e.do(req{method: http.MethodHead, path: "/v2/pub/blocked/blobs/" + layer.String(), user: "bob"}), http.StatusOK, "")
	e.expect(e.do(req{method: http.MethodGet, path: "/v2/pub/fine/blobs/" + fine.String(), user: "bob"}), http.StatusOK, "")
	if b := gate.blobs; len(b) != 2 || b[0].Repository != "pub/blocked" || b[0].Project != "pub" || b[0].Digest != layer ||
		b[0].Principal.Name != "bob" || b[0].Host == "" || b[1].Digest != fine {
		t.Fatalf("gate asked %+v", b)
	}
	// An unknown blob is not the gate's business: 404.
	e.expect(e.do(req{method: http.MethodGet, path: "/v2/pub/blocked/blobs/" + digest.FromString("nope").String(), user: "bob"}), http.StatusNotFound, "BLOB_UNKNOWN")
	gate.blobs = nil
	e.expect(e.do(req{method: http.MethodGet, path: "/v2/pub/blocked/blobs/" + layer.String(), user: "admin"}), http.StatusOK, "")
	if len(gate.blobs) != 0 {
		t.Fatalf("gate asked about a pusher's blob GET: %+v", gate.blobs)
	}
}
