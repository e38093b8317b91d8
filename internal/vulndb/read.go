package vulndb

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// limits bounds what a source may make the importer read.
type limits struct {
	// record caps one OSV record file (a zip entry or a file).
	record int64
	// feed caps one CVE feed file (NVD API 2.0 pages are tens of MiB).
	feed int64
	// total caps everything one source expands to.
	total int64
}

// fileFunc receives one file of a source: its name for messages, relative
// to the source ("GO-2020-0001.json" in an all.zip source, "sub/x.yaml" or
// "sub/all.zip!GO-2020-0001.json" in a directory) and its bytes. An error
// it returns fails the source.
type fileFunc func(name string, data []byte) error

// recordErrFunc receives a problem with one file that does not fail the
// source (the file is skipped).
type recordErrFunc func(name string, err error)

// walker reads the files of one source, keeping count of the bytes read
// against the source's total limit.
type walker struct {
	lim    limits
	total  int64
	file   fileFunc
	recErr recordErrFunc
}

// sourceError is a failure of a source itself: nothing of it is imported.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

func sourceErrorf(format string, args ...any) error {
	return &sourceError{fmt.Errorf(format, args...)}
}

// isRecordFile reports whether name is read as a record or feed file;
// other files in directories and archives (READMEs, licences) are ignored.
func isRecordFile(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".json", ".yaml", ".yml":
		return true
	}
	return false
}

func isZip(name string) bool { return strings.EqualFold(path.Ext(name), ".zip") }

// feedMarkers identify CVE feeds in the first bytes of a JSON file: NVD CVE
// API 2.0 documents state their format near the top.
var feedMarkers = [][]byte{[]byte(`"NVD_CVE"`), []byte(`"vulnerabilities"`)}

// sniffLimit is how much of a file decides whether it is a feed.
const sniffLimit = 4096

// readLimited reads r, which is called name, up to the record limit, or
// the feed limit for a file that starts like a CVE feed. A file over its
// limit is a record error (nil data, nil error); going over the source's
// total is a *sourceError; a read failure is returned as it is.
func (w *walker) readLimited(name string, r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(r, sniffLimit)
	head, err := br.Peek(sniffLimit)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	limit := w.lim.record
	for _, m := range feedMarkers {
		if bytes.Contains(head, m) {
			limit = max(w.lim.feed, w.lim.record)
			break
		}
	}
	if remaining := w.lim.total - w.total; limit > remaining {
		limit = remaining
	}
	data, err := io.ReadAll(io.LimitReader(br, limit+1))
	w.total += int64(len(data))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		if w.total > w.lim.total {
			return nil, sourceErrorf("%s: the source expands to more than %d bytes (vulndb.maxSourceSize)", name, w.lim.total)
		}
		w.recErr(name, fmt.Errorf("larger than %d bytes (vulndb.maxRecordSize): skipped", limit))
		return nil, nil
	}
	return data, nil
}

// readFile reads one record or feed file.
func (w *walker) readFile(name string, r io.Reader) error {
	data, err := w.readLimited(name, r)
	var se *sourceError
	if err != nil && !errors.As(err, &se) {
		return sourceErrorf("%s: %w", name, err)
	}
	if err != nil || data == nil {
		return err
	}
	return w.file(name, data)
}

// readZip reads every record file of the zip archive ra (size bytes),
// called name; its entries are called prefix + their name. A corrupted
// archive or entry fails the source.
func (w *walker) readZip(name, prefix string, ra io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return sourceErrorf("%s: not a readable zip archive: %w", name, err)
	}
	files := make([]*zip.File, 0, len(zr.File))
	for _, f := range zr.File {
		if !f.FileInfo().IsDir() && isRecordFile(f.Name) {
			files = append(files, f)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	for _, f := range files {
		entry := prefix + f.Name
		rc, err := f.Open()
		if err != nil {
			return sourceErrorf("%s: corrupted zip archive: entry %s: %w", name, f.Name, err)
		}
		// The CRC is checked when an entry's end is read, which readLimited
		// does for every entry within the limits.
		data, err := w.readLimited(entry, rc)
		rc.Close()
		var se *sourceError
		if err != nil && !errors.As(err, &se) {
			return sourceErrorf("%s: corrupted zip archive: entry %s: %w", name, f.Name, err)
		}
		if err != nil {
			return err
		}
		if data == nil {
			continue
		}
		if err := w.file(entry, data); err != nil {
			return err
		}
	}
	return nil
}

// readZipFile reads the zip archive at file path p, called name, whose
// entries are called prefix + their name.
func (w *walker) readZipFile(name, prefix, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return sourceErrorf("%s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return sourceErrorf("%s: %w", name, err)
	}
	return w.readZip(name, prefix, f, st.Size())
}

// readDir reads every record file and zip archive under root, recursively
// in lexical order, skipping hidden files and directories. An unreadable
// directory or file fails the source.
func (w *walker) readDir(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return sourceErrorf("%s: %w", p, err)
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			rel = p
		}
		rel = filepath.ToSlash(rel)
		switch {
		case isZip(p):
			return w.readZipFile(rel, rel+"!", p)
		case isRecordFile(p):
			f, err := os.Open(p)
			if err != nil {
				return sourceErrorf("%s: %w", rel, err)
			}
			defer f.Close()
			return w.readFile(rel, f)
		}
		return nil
	})
}
