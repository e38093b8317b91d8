package match

import (
	"archive/zip"
	"io"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/customs-dev/customs/internal/vulndb/osv"
)

// realDataDir holds the real OSV exports (testdata/vulndata/osv/*/all.zip).
const realDataDir = "../../../testdata/vulndata/osv"

var (
	realOnce sync.Once
	realAdvs []*osv.Vulnerability
	// realBad are the records osv.Parse rejects, by file name.
	realBad map[string]error
	realErr error
)

// loadReal reads every record of every all.zip under realDataDir, once per
// test binary (the records are not modified by Build). It also returns the
// records osv.Parse rejected, by file name.
func loadReal(tb testing.TB) ([]*osv.Vulnerability, map[string]error) {
	tb.Helper()
	realOnce.Do(func() { realAdvs, realBad, realErr = readZips(realDataDir) })
	if realErr != nil {
		tb.Fatal(realErr)
	}
	return realAdvs, realBad
}

func readZips(dir string) ([]*osv.Vulnerability, map[string]error, error) {
	zips, err := filepath.Glob(filepath.Join(dir, "*", "all.zip"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(zips)
	var out []*osv.Vulnerability
	bad := make(map[string]error)
	for _, z := range zips {
		zr, err := zip.OpenReader(z)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				zr.Close()
				return nil, nil, err
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				zr.Close()
				return nil, nil, err
			}
			v, err := osv.Parse(f.Name, data)
			if err != nil {
				bad[f.Name] = err
				continue
			}
			out = append(out, v)
		}
		zr.Close()
	}
	return out, bad, nil
}
