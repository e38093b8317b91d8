// Command ocilayout turns a root filesystem tarball (as written by
// mmdebstrap or debootstrap+tar) into a single-layer OCI image layout: a
// gzip layer, an OCI image config with os, architecture and rootfs diff_ids,
// an OCI image manifest and an index.json naming it by tag.
//
// It exists so that the end-to-end tests push a real Linux distribution
// image that was built on the test machine from Debian's archive alone.
//
// Usage:
//
//	ocilayout -rootfs rootfs.tar -out DIR -tag bookworm [-arch amd64] [-os linux] [-cmd bash]
//
// DIR must not exist yet; the manifest digest is printed on success.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// options is what one conversion needs.
type options struct {
	rootfs  string    // path of the uncompressed rootfs tarball
	out     string    // layout directory to create
	tag     string    // org.opencontainers.image.ref.name of the image in index.json
	os      string    // image config "os"
	arch    string    // image config "architecture"
	cmd     []string  // image config Cmd
	created time.Time // image config and history "created"
	comment string    // history created_by
}

func main() {
	var o options
	var cmd, created string
	fs := flag.NewFlagSet("ocilayout", flag.ContinueOnError)
	fs.StringVar(&o.rootfs, "rootfs", "", "uncompressed root filesystem tarball (required)")
	fs.StringVar(&o.out, "out", "", "OCI layout directory to create; must not exist (required)")
	fs.StringVar(&o.tag, "tag", "latest", "tag recorded as org.opencontainers.image.ref.name in index.json")
	fs.StringVar(&o.os, "os", "linux", "image os")
	fs.StringVar(&o.arch, "arch", runtime.GOARCH, "image architecture (OCI/Go names: amd64, arm64, ...)")
	fs.StringVar(&cmd, "cmd", "bash", "image default command, split on spaces")
	fs.StringVar(&created, "created", "", "creation time, RFC 3339 (default: the rootfs file's modification time)")
	fs.StringVar(&o.comment, "comment", "rootfs tarball imported by ocilayout", "history created_by of the layer")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if o.rootfs == "" || o.out == "" || fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "ocilayout: -rootfs and -out are required and no arguments are taken")
		fs.Usage()
		os.Exit(2)
	}
	o.cmd = strings.Fields(cmd)
	if created != "" {
		t, err := time.Parse(time.RFC3339, created)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ocilayout: -created: %v\n", err)
			os.Exit(2)
		}
		o.created = t
	} else {
		st, err := os.Stat(o.rootfs)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ocilayout: %v\n", err)
			os.Exit(1)
		}
		o.created = st.ModTime()
	}
	d, err := convert(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ocilayout: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(d)
}

// convert writes the layout described by o and returns the image manifest's
// digest. It refuses to write into an existing directory.
func convert(o options) (v1.Hash, error) {
	if _, err := os.Stat(o.out); err == nil {
		return v1.Hash{}, fmt.Errorf("%s already exists", o.out)
	} else if !errors.Is(err, os.ErrNotExist) {
		return v1.Hash{}, err
	}
	if err := checkTar(o.rootfs); err != nil {
		return v1.Hash{}, err
	}
	// The compressed bytes are kept in memory after the first pass so the
	// digest computation and the layout write gzip the rootfs only once.
	layer, err := tarball.LayerFromFile(o.rootfs,
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressedCaching)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading %s: %w", o.rootfs, err)
	}

	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	created := v1.Time{Time: o.created.UTC().Truncate(time.Second)}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: created, CreatedBy: o.comment},
	})
	if err != nil {
		return v1.Hash{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	cf = cf.DeepCopy()
	cf.OS = o.os
	cf.Architecture = o.arch
	cf.Created = created
	cf.Config.Cmd = o.cmd
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return v1.Hash{}, err
	}

	p, err := layout.Write(o.out, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendImage(img,
		layout.WithAnnotations(map[string]string{specv1.AnnotationRefName: o.tag}),
		layout.WithPlatform(v1.Platform{OS: o.os, Architecture: o.arch})); err != nil {
		return v1.Hash{}, fmt.Errorf("writing layout %s: %w", o.out, err)
	}
	return img.Digest()
}

// checkTar fails unless path starts like an uncompressed tar archive, so a
// truncated or compressed rootfs is reported here rather than producing an
// image with a garbage layer.
func checkTar(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := make([]byte, 512)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return fmt.Errorf("%s is not a tar archive: %w", path, err)
	}
	if magic := string(hdr[257:262]); magic != "ustar" {
		return fmt.Errorf("%s is not an uncompressed tar archive (no ustar magic)", path)
	}
	return nil
}
