package layers

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"strconv"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ent is one tar entry a test writes.
type ent struct {
	name string
	typ  byte // tar.Type*, default TypeReg
	body string
	link string
	mode int64
}

// tarOf writes the entries as an uncompressed tar archive.
func tarOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdOf(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

func sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// rawHeader is a hand-made ustar header block, for headers archive/tar
// refuses to write (GNU sparse PAX records, lying sizes).
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad512(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// paxRecords encodes PAX extended header records.
func paxRecords(kv ...string) []byte {
	var out []byte
	for i := 0; i+1 < len(kv); i += 2 {
		rec := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		out = append(out, strconv.Itoa(n)+rec...)
	}
	return out
}

// sparseTar returns a tar holding one GNU sparse (PAX format 1.0) file of
// realSize bytes whose only data is "data" at offset 0, then the entries
// in more.
func sparseTar(t testing.TB, name string, realSize int64, data string, more ...ent) []byte {
	t.Helper()
	recs := paxRecords("GNU.sparse.major", "1", "GNU.sparse.minor", "0",
		"GNU.sparse.name", name, "GNU.sparse.realsize", strconv.FormatInt(realSize, 10))
	var b []byte
	b = append(b, rawHeader("PaxHeaders/x", tar.TypeXHeader, int64(len(recs)))...)
	b = append(b, pad512(recs)...)
	// The data starts with the sparse map: count, then offset/length pairs.
	smap := pad512([]byte(fmt.Sprintf("1\n0\n%d\n", len(data))))
	body := append(smap, data...)
	b = append(b, rawHeader("GNUSparseFile.0/x", tar.TypeReg, int64(len(body)))...)
	b = append(b, pad512(body)...)
	rest := tarOf(t, more...) // ends with the end-of-archive blocks
	return append(b, rest...)
}

func sha512Sum(b []byte) [64]byte { return sha512.Sum512(b) }
