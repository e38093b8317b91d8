package e2e_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// gcRaceRounds is how many pushes race the collector.
const gcRaceRounds = 30

// deletedBlobs finds how many blobs `customs gc` says it deleted.
var deletedBlobs = regexp.MustCompile(`deleted (\d+) blobs`)

// TestGCNeverRacesAPush runs `customs gc --grace-period 0` over and over, in
// its own processes, against the data of a running `customs serve`, while
// images are pushed whose shared layers were left unreferenced by the
// deletion of the previous image: the moment a collector wants those blobs
// is the moment a client, having seen them exist (HEAD), skips their upload
// and references them from a manifest, or uploads them again. Every push
// the server acknowledged must pull back whole (every blob served and
// matching its digest), during the collections and after a last one; a push
// may only fail with MANIFEST_BLOB_UNKNOWN (its blobs were collected first,
// and the client is told).
func TestGCNeverRacesAPush(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("customs gc is customs'")
	}
	bin := harness.CustomsBinary(t)
	srv := harness.StartCustoms(t)
	srv.CreateProject(t, "gc", false)
	opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: srv.Username, Password: srv.Password}),
		remote.WithRetryStatusCodes(), remote.WithRetryPredicate(func(error) bool { return false })}

	shared := []string{"shared/a", strings.Repeat("layer a\n", 32<<10), "shared/b", strings.Repeat("layer b\n", 16<<10)}

	ctx, stop := context.WithCancel(context.Background())
	var collections, collected atomic.Int64
	var gcErrs []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			out, err := exec.Command(bin, "gc", "--data-dir", srv.DataDir, "--grace-period", "0").CombinedOutput()
			if err != nil {
				mu.Lock()
				gcErrs = append(gcErrs, fmt.Sprintf("%v: %s", err, out))
				mu.Unlock()
				continue
			}
			collections.Add(1)
			if m := deletedBlobs.FindSubmatch(out); m != nil {
				n, _ := strconv.ParseInt(string(m[1]), 10, 64)
				collected.Add(n)
			} else {
				mu.Lock()
				gcErrs = append(gcErrs, fmt.Sprintf("unexpected output: %s", out))
				mu.Unlock()
			}
		}
	}()

	var acked []name.Digest
	refused := 0
	for i := range gcRaceRounds {
		img := harness.BuildImage(t, harness.Layer(t, shared[0], shared[1]), harness.Layer(t, shared[2], shared[3]),
			harness.Layer(t, "round", fmt.Sprint(i)))
		tag, err := name.NewTag(fmt.Sprintf("%s/gc/app:r%d", srv.Addr, i), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		err = remote.Write(tag, img, opts...)
		if err != nil {
			if !strings.Contains(err.Error(), "MANIFEST_BLOB_UNKNOWN") {
				t.Errorf("round %d: push failed other than with MANIFEST_BLOB_UNKNOWN: %v", i, err)
			}
			refused++
			continue
		}
		d, _ := img.Digest()
		ref := tag.Context().Digest(d.String())
		acked = append(acked, ref)
		// Pulled back while collections go on.
		if err := pullWhole(ref, opts); err != nil {
			t.Errorf("round %d: acknowledged push of %s does not pull whole: %v", i, ref, err)
		}
		// The image is deleted, so its shared layers are garbage again for
		// the next round, but for the last rounds', kept to be checked
		// after a last collection.
		if i < gcRaceRounds-3 {
			if err := remote.Delete(ref, opts...); err != nil {
				t.Fatalf("round %d: delete: %v", i, err)
			}
			acked = acked[:len(acked)-1]
		}
	}
	stop()
	wg.Wait()
	t.Logf("%d pushes, %d refused with MANIFEST_BLOB_UNKNOWN; %d collections deleted %d blobs", gcRaceRounds, refused, collections.Load(), collected.Load())
	if len(gcErrs) > 0 {
		t.Errorf("customs gc failed %d times, first: %s", len(gcErrs), gcErrs[0])
	}
	if collections.Load() < 3 || collected.Load() == 0 {
		t.Fatalf("the collector ran %d times and deleted %d blobs: nothing raced", collections.Load(), collected.Load())
	}

	// A last collection once all is quiet: the kept images stay whole.
	if out, err := exec.Command(bin, "gc", "--data-dir", srv.DataDir, "--grace-period", "0").CombinedOutput(); err != nil {
		t.Fatalf("customs gc: %v\n%s", err, out)
	}
	for _, ref := range acked {
		if err := pullWhole(ref, opts); err != nil {
			t.Errorf("after the last collection %s does not pull whole: %v", ref, err)
		}
	}
}

// pullWhole fetches the image ref names and reads every blob, checking
// sizes and digests.
func pullWhole(ref name.Digest, opts []remote.Option) error {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return err
	}
	if _, err := img.ConfigFile(); err != nil { // checked against its digest
		return fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		rc, err := l.Compressed() // verifies the digest at EOF
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != size {
			return fmt.Errorf("layer %s: read %d of %d bytes: %v", d, n, size, err)
		}
	}
	return nil
}
