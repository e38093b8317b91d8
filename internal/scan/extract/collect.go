package extract

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"
)

// collector builds the LayerResult of one layer (or directory) from its
// entries, in one pass: a file no plugin wants costs a few string compares
// and leaves no trace; a wanted file is read once (into memory if small,
// else into the collector's private temp dir), handed to each plugin that
// wants it, and dropped.
type collector struct {
	x       *Extractor
	res     *LayerResult
	tempDir string   // private, created on first use, removed by close
	root    *os.Root // opened on tempDir
	seq     int
	owned   int // files named by OS package file lists so far
	// dir, for a directory scan, is the directory read (files are used
	// where they are, never copied).
	dir     *os.Root
	dirPath string
}

func newCollector(x *Extractor) *collector {
	return &collector{
		x:   x,
		res: &LayerResult{Schema: resultSchema, Files: map[string]*FileResult{}},
	}
}

// close removes the private temp dir.
func (c *collector) close() error {
	if c.root == nil {
		return nil
	}
	c.root.Close()
	return os.RemoveAll(c.tempDir)
}

// maxOwnedPerLayer bounds the OS-package file names a layer result keeps
// (the largest distribution images install a few hundred thousand files).
const maxOwnedPerLayer = 2_000_000

// tracksSymlink reports whether a symlink at p matters to composition:
// /etc/os-release and top-level directories (usr-merge: /bin -> usr/bin).
func tracksSymlink(p string) bool {
	return isOSReleasePath(p) || !strings.Contains(p, "/")
}

func (c *collector) symlink(p, target string) {
	if tracksSymlink(p) {
		c.res.Files[p] = &FileResult{Symlink: target}
	}
}

// wanting returns the plugins that want the file at p.
func (c *collector) wanting(p string, info fs.FileInfo) []plugin {
	var ps []plugin
	for _, pl := range c.x.plugins {
		if pl.wants(p, info) {
			ps = append(ps, pl)
		}
	}
	return ps
}

// hardlink gives p the result of the file it links to in the same layer,
// when plugins read that file (a hard link is the same file, whatever mode
// its header claims); a link wanted by a plugin to a file nobody read
// cannot be extracted and is reported as a problem.
func (c *collector) hardlink(p, target string, info fs.FileInfo) {
	src, ok := c.res.Files[target]
	if !ok {
		if len(c.wanting(p, info)) > 0 {
			c.res.problem(Problem{Path: p, Message: fmt.Sprintf("hard link to %s, which was not read in this layer", target)})
		}
		return
	}
	fr := &FileResult{Owns: src.Owns, OSRelease: src.OSRelease}
	for _, pkg := range src.Packages {
		locs := append([]string{p}, pkg.Locations[1:]...)
		for i, l := range locs[1:] {
			if rest, ok := strings.CutPrefix(l, target+"/"); ok {
				locs[i+1] = p + "/" + rest
			}
		}
		pkg.Locations = locs
		fr.Packages = append(fr.Packages, pkg)
	}
	c.res.Files[p] = fr
}

// file reads the regular file at p when plugins want it: from body (a tar
// entry) or, for a directory scan, from the file in place. An error return
// stops the layer: only a broken stream or cancellation does that; a file
// too large or that the plugins cannot parse is recorded as a problem.
func (c *collector) file(ctx context.Context, p string, info fs.FileInfo, body io.Reader) error {
	// Plugins are asked with the size capped at MaxFileBytes, so that a
	// file too large for them is still known as theirs: it masks the file
	// below it and is reported as not read, rather than ignored.
	ps := c.wanting(p, cappedInfo{info, min(info.Size(), c.x.cfg.MaxFileBytes)})
	if len(ps) == 0 {
		return nil
	}
	// Whatever happens below, the file at p now masks a lower layer's.
	fr := &FileResult{}
	c.res.Files[p] = fr
	ps = slices.DeleteFunc(ps, func(pl plugin) bool {
		max, name := c.x.cfg.MaxFileBytes, "MaxFileBytes"
		if pl.manifest() {
			max, name = c.x.cfg.MaxManifestBytes, "MaxManifestBytes"
		}
		if info.Size() <= max {
			return false
		}
		c.res.problem(Problem{Path: p, Extractor: pl.id(), Message: fmt.Sprintf("not read: %d bytes, over the %d-byte limit (%s)", info.Size(), max, name)})
		return true
	})
	if len(ps) == 0 {
		return nil
	}

	disk := info.Size() > c.x.cfg.MaxMemoryFileBytes
	for _, pl := range ps {
		disk = disk || pl.needsRealFile()
	}
	in := &fileInput{Path: p, Info: info}
	var done func()
	var err error
	switch {
	case c.dir != nil:
		in.Root = c.dirPath
		in.Content, done, err = c.openInDir(p)
	case disk:
		in.Content, in.Root, done, err = c.spoolDisk(p, info.Size(), streamReader{body})
	default:
		in.Content, err = spoolMemory(info.Size(), streamReader{body})
		done = func() {}
	}
	if err != nil {
		if isStreamErr(err) {
			return err
		}
		c.res.problem(Problem{Path: p, Message: fmt.Sprintf("not read: %v", err)})
		return nil
	}
	defer done()
	c.res.Stats.FilesRead++
	c.res.Stats.BytesRead += info.Size()

	in.FS = scanFS()
	for _, pl := range ps {
		if _, err := in.Content.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewinding %s: %w", p, err)
		}
		if err := runPlugin(ctx, pl, in, fr); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.res.problem(Problem{Path: p, Extractor: pl.id(), Message: err.Error()})
		}
	}
	c.owned += len(fr.Owns)
	if c.owned > maxOwnedPerLayer {
		c.res.problem(Problem{Path: p, Message: fmt.Sprintf("file lists of OS packages name more than %d files in this layer; the rest are not kept (language packages they own may be reported twice)", maxOwnedPerLayer)})
		fr.Owns = fr.Owns[:max(0, len(fr.Owns)-(c.owned-maxOwnedPerLayer))]
		c.owned = maxOwnedPerLayer
	}
	// Extractors may report in map order: make results reproducible.
	slices.SortStableFunc(fr.Packages, func(a, b Package) int {
		return cmp.Or(cmp.Compare(a.Extractor, b.Extractor), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version),
			cmp.Compare(a.PURL, b.PURL), slices.Compare(a.Locations, b.Locations))
	})
	return nil
}

// cappedInfo is a FileInfo whose size is replaced.
type cappedInfo struct {
	fs.FileInfo
	size int64
}

func (c cappedInfo) Size() int64 { return c.size }

// runPlugin runs one plugin, turning a panic of a parser on hostile input
// into an error: a bad file must not take the server down.
func runPlugin(ctx context.Context, pl plugin, in *fileInput, fr *FileResult) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("extractor panicked: %v\n%s", r, firstLines(debug.Stack(), 12))
		}
	}()
	return pl.extract(ctx, in, fr)
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// scanFS returns the ScanInput.FS every scalibr extractor gets. A layer's files
// are a stream, not a filesystem, so it holds no file of the layer but an
// empty /etc/os-release: scalibr's OS extractors read the distro through
// FS (and log when there is none), but composition decides the distro and
// everything derived from it, so what they read here is never used.
func scanFS() fstest.MapFS {
	return fstest.MapFS{"etc/os-release": &fstest.MapFile{Mode: 0o644}}
}

// streamError marks an error of the layer stream itself (as opposed to a
// problem with one file), which must stop the layer.
type streamError struct{ err error }

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

func isStreamErr(err error) bool {
	var se *streamError
	return errors.As(err, &se)
}

// spoolMemory reads exactly size bytes of body into memory.
func spoolMemory(size int64, body io.Reader) (readSeekerAt, error) {
	buf := make([]byte, size)
	if _, err := io.ReadFull(body, buf); err != nil {
		if !isStreamErr(err) { // io.ErrUnexpectedEOF: the entry is cut short
			err = &streamError{err}
		}
		return nil, err
	}
	return bytes.NewReader(buf), nil
}

// spoolDisk copies exactly size bytes of body to ROOT/p inside the private
// temp dir, where ROOT is a fresh subdirectory; it returns the open file,
// ROOT, and a function that closes and removes it. os.Root keeps every
// name inside the temp dir whatever the layer put in p.
func (c *collector) spoolDisk(p string, size int64, body io.Reader) (readSeekerAt, string, func(), error) {
	if c.root == nil {
		dir, err := os.MkdirTemp(c.x.cfg.TempDir, "customs-extract-")
		if err != nil {
			return nil, "", nil, &streamError{fmt.Errorf("spooling %s: %w", p, err)}
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, "", nil, &streamError{fmt.Errorf("spooling %s: %w", p, err)}
		}
		c.tempDir, c.root = dir, root
	}
	c.seq++
	sub := strconv.Itoa(c.seq)
	name := sub + "/" + p
	if err := c.root.MkdirAll(path.Dir(name), 0o700); err != nil {
		c.root.RemoveAll(sub)
		return nil, "", nil, fmt.Errorf("spooling to disk: %w", err)
	}
	f, err := c.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		c.root.RemoveAll(sub)
		return nil, "", nil, fmt.Errorf("spooling to disk: %w", err)
	}
	cleanup := func() {
		f.Close()
		c.root.RemoveAll(sub)
	}
	n, err := io.Copy(f, io.LimitReader(body, size))
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		cleanup()
		if isStreamErr(err) {
			return nil, "", nil, err
		}
		if errors.Is(err, io.ErrUnexpectedEOF) { // the entry is cut short
			return nil, "", nil, &streamError{err}
		}
		return nil, "", nil, fmt.Errorf("spooling to disk: %w", err) // the disk, not the layer
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, "", nil, fmt.Errorf("spooling to disk: %w", err)
	}
	return f, filepath.Join(c.tempDir, sub), cleanup, nil
}

// openInDir opens the file at p in the directory being scanned; os.Root
// refuses a symlink that leads out of it.
func (c *collector) openInDir(p string) (readSeekerAt, func(), error) {
	f, err := c.dir.Open(p)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// streamReader marks the errors of a layer stream as streamErrors.
type streamReader struct{ r io.Reader }

func (s streamReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &streamError{err}
	}
	return n, err
}
