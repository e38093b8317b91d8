package layers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is how a layer blob is compressed.
type Compression string

// Compressions a layer can have.
const (
	None Compression = "none"
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// Layer media types (OCI image-spec and Docker image manifest v2.2) and the
// compression each declares. Any other non-empty media type is refused.
var layerMediaTypes = map[string]Compression{
	"application/vnd.oci.image.layer.v1.tar":                            None,
	"application/vnd.oci.image.layer.v1.tar+gzip":                       Gzip,
	"application/vnd.oci.image.layer.v1.tar+zstd":                       Zstd,
	"application/vnd.oci.image.layer.nondistributable.v1.tar":           None,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":      Gzip,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":      Zstd,
	"application/vnd.docker.image.rootfs.diff.tar":                      None,
	"application/vnd.docker.image.rootfs.diff.tar.gzip":                 Gzip,
	"application/vnd.docker.image.rootfs.foreign.diff.tar":              None,
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":         Gzip,
	"application/vnd.docker.image.rootfs.diff.tar.zstd":                 Zstd,
	"application/vnd.oci.image.layer.v1.tar+gzip+encrypted":             "", // refused below, named
	"application/vnd.oci.image.layer.v1.tar+zstd+encrypted":             "",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+encrypted": "",
}

// DeclaredCompression returns the compression mediaType declares; "" with an
// ErrUnsupported error for a media type that is not a readable image layer.
// An empty media type declares nothing (the content decides).
func DeclaredCompression(mediaType string) (Compression, error) {
	if mediaType == "" {
		return "", nil
	}
	c, ok := layerMediaTypes[mediaType]
	if !ok {
		return "", unsupportedf("layer media type %q is not supported (want an OCI or Docker image layer: tar, tar+gzip or tar+zstd)", mediaType)
	}
	if c == "" {
		return "", unsupportedf("layer media type %q is encrypted; encrypted layers are not supported", mediaType)
	}
	return c, nil
}

// Magic numbers at the start of a blob.
var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	bzip2Magic = []byte("BZh")
)

// sniff decides the compression of a blob from its first bytes. The content
// wins over the media type (some tools label zstd layers as gzip); content
// that is neither compressed nor a tar archive is an error naming both.
func sniff(head []byte, declared Compression, mediaType string) (Compression, error) {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip, nil
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd, nil
	case bytes.HasPrefix(head, xzMagic):
		return "", unsupportedf("layer is xz-compressed; only gzip and zstd layers are supported")
	case bytes.HasPrefix(head, bzip2Magic) && declared != None:
		return "", unsupportedf("layer is bzip2-compressed; only gzip and zstd layers are supported")
	case len(head) == 0 && declared != Gzip && declared != Zstd:
		return None, nil // an empty uncompressed layer
	case looksLikeTar(head):
		return None, nil
	case declared == Gzip || declared == Zstd:
		return "", corruptf(nil, "layer declared as %s (%s) starts with %s, which is neither gzip, zstd nor a tar archive", declared, orUnknown(mediaType), hexPrefix(head))
	}
	return "", corruptf(nil, "layer content starting with %s is neither gzip, zstd nor a tar archive", hexPrefix(head))
}

// looksLikeTar reports whether head starts with a tar header: the ustar or
// GNU magic at offset 257, or (for old v7 archives and an archive whose
// first block is the end marker) a block whose checksum field is octal.
func looksLikeTar(head []byte) bool {
	if len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")) {
		return true
	}
	if len(head) >= 512 && bytes.Equal(head[:512], make([]byte, 512)) {
		return true // end-of-archive block: an empty layer
	}
	if len(head) >= 156 {
		chk := bytes.TrimRight(bytes.TrimLeft(head[148:156], " \x00"), " \x00")
		if len(chk) == 0 {
			return false
		}
		for _, c := range chk {
			if c < '0' || c > '7' {
				return false
			}
		}
		return true
	}
	return false
}

func orUnknown(mediaType string) string {
	if mediaType == "" {
		return "no media type"
	}
	return mediaType
}

func hexPrefix(b []byte) string {
	if len(b) == 0 {
		return "nothing (empty blob)"
	}
	const n = 8
	if len(b) > n {
		b = b[:n]
	}
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 3*len(b))
	for i, c := range b {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

// countingReader counts and hashes the compressed bytes read from a blob.
type countingReader struct {
	r    io.Reader
	n    int64
	hash hash.Hash // nil: no digest wanted
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.hash != nil && n > 0 {
		c.hash.Write(p[:n])
	}
	return n, err
}

// expander reads the uncompressed stream, hashing it and enforcing the
// expanded-size and ratio limits and the context on every read.
type expander struct {
	ctx     context.Context
	r       io.Reader
	raw     *countingReader
	lim     Limits
	n       int64
	hash    hash.Hash // nil: no diffID wanted
	comp    Compression
	tripped error
}

func (e *expander) Read(p []byte) (int, error) {
	if e.tripped != nil {
		return 0, e.tripped
	}
	if err := e.ctx.Err(); err != nil {
		return 0, err
	}
	// Never read past the cap: ask for at most one byte more than allowed,
	// so an over-limit stream is noticed without producing much beyond it.
	if room := e.lim.MaxExpandedBytes - e.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := e.r.Read(p)
	e.n += int64(n)
	if e.hash != nil && n > 0 {
		e.hash.Write(p[:n])
	}
	if e.n > e.lim.MaxExpandedBytes {
		e.tripped = tooLargef("layer expands to more than %d bytes (limit MaxExpandedBytes)", e.lim.MaxExpandedBytes)
		return n, e.tripped
	}
	if e.comp != None && e.n > e.lim.RatioFloorBytes && e.n/max(e.raw.n, 1) > e.lim.MaxRatio {
		e.tripped = tooLargef("layer expands more than %d:1 (%d bytes from %d compressed; limit MaxRatio): a decompression bomb", e.lim.MaxRatio, e.n, e.raw.n)
		return n, e.tripped
	}
	if err != nil && !errors.Is(err, io.EOF) && !isLayerError(err) && e.ctx.Err() == nil && e.comp != None {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = corruptf(err, "layer is truncated: the %s stream ends after %d compressed bytes", e.comp, e.raw.n)
		} else {
			err = corruptf(err, "corrupt %s stream after %d compressed bytes: %v", e.comp, e.raw.n, err)
		}
		e.tripped = err
	}
	return n, err
}

// decompressor opens the decoder for comp over br.
func decompressor(br *bufio.Reader, comp Compression) (io.Reader, func(), error) {
	switch comp {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, corruptf(err, "corrupt gzip header: %v", err)
		}
		return zr, func() { zr.Close() }, nil
	case Zstd:
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, nil, corruptf(err, "corrupt zstd stream: %v", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// maxZstdWindow bounds the memory a zstd frame may ask for (zstd --long=27
// uses 128 MiB; the format allows up to 3.75 TiB).
const maxZstdWindow = 128 << 20
