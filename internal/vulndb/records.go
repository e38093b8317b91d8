package vulndb

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb/ecosystem"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/osv"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// RecordError is a problem with one record of a source: the record is
// skipped (its stored version, if any, stays) and the rest of the source
// imports.
type RecordError struct {
	// Source names the source, File the file or archive entry
	// ("all.zip!GO-2020-0001.json") the record came from.
	Source, File string
	// ID is the record's id, "" when it could not be read.
	ID  string
	Err error
}

func (e *RecordError) Error() string {
	msg := e.Err.Error()
	var b strings.Builder
	b.WriteString(e.Source)
	if e.File != "" && !strings.HasPrefix(msg, e.File+":") {
		b.WriteString(": ")
		b.WriteString(e.File)
	}
	b.WriteString(": ")
	if e.ID != "" && !strings.Contains(msg, e.ID) {
		b.WriteString(e.ID)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	return b.String()
}

func (e *RecordError) Unwrap() error { return e.Err }

// hashOf is the content hash records are compared by.
func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// candidate is an OSV record read from a source whose content is new or
// changed, waiting for validation.
type candidate struct {
	file string
	v    *osv.Vulnerability
	rec  store.VulnRecord
}

// collector turns a source's files into the records of one import.
type collector struct {
	source string
	stored map[store.VulnKey]string
	// known maps the hashes of the source's stored OSV records to their
	// keys: a file with such a hash is unchanged and is not parsed again.
	known   map[string]store.VulnKey
	seen    map[store.VulnKey]string
	files   map[store.VulnKey]string // key -> file it came from, for duplicates
	cands   []candidate
	ratings map[string]cveEntry
	errs    []*RecordError
	// progress counters
	read, changed int
	onProgress    func(read, changed, errs int)
}

func newCollector(source string, stored map[store.VulnKey]string, onProgress func(read, changed, errs int)) *collector {
	c := &collector{source: source, stored: stored, known: make(map[string]store.VulnKey, len(stored)),
		seen: map[store.VulnKey]string{}, files: map[store.VulnKey]string{}, ratings: map[string]cveEntry{},
		onProgress: onProgress}
	for k, h := range stored {
		if k.Kind == store.VulnOSV {
			c.known[h] = k
		}
	}
	return c
}

// recordErr skips a record (or a file of records) that cannot be read.
func (c *collector) recordErr(file, id string, err error) {
	c.errs = append(c.errs, &RecordError{Source: c.source, File: file, ID: id, Err: err})
	c.read++
	if id == "" {
		// Exports name files after their record: keep the stored record a
		// file of that name held before.
		base := path.Base(file[strings.LastIndexByte(file, '!')+1:])
		guess := strings.TrimSuffix(base, path.Ext(base))
		if _, ok := c.stored[store.VulnKey{Kind: store.VulnOSV, ID: guess}]; ok {
			id = guess
		}
	}
	if id != "" {
		k := store.VulnKey{Kind: store.VulnOSV, ID: id}
		if _, ok := c.seen[k]; !ok {
			// Keep whatever is stored of a record that cannot be read now.
			c.seen[k] = ""
		}
	}
	c.progress()
}

func (c *collector) progress() {
	if c.onProgress != nil {
		c.onProgress(c.read, c.changed, len(c.errs))
	}
}

// see records that key, read from file, has content hash h; it reports
// false for a duplicate key.
func (c *collector) see(file string, k store.VulnKey, h string) bool {
	if first, dup := c.files[k]; dup {
		c.errs = append(c.errs, &RecordError{Source: c.source, File: file, ID: k.ID,
			Err: fmt.Errorf("record %s is also in %s: skipped", k.ID, first)})
		c.read++
		c.progress()
		return false
	}
	c.files[k] = file
	c.seen[k] = h
	c.read++
	if c.stored[k] != h {
		c.changed++
	}
	c.progress()
	return true
}

// file handles one file of the source: an OSV record (JSON or YAML), an
// NVD CVE API 2.0 document or a CVE JSON 5 record.
func (c *collector) file(name string, data []byte) error {
	h := hashOf(data)
	if k, ok := c.known[h]; ok {
		c.see(name, k, h)
		return nil
	}
	v, err := osv.Parse(name, data)
	if err != nil {
		c.recordErr(name, "", err)
		return nil
	}
	if v.ID == "" {
		c.feed(name, data)
		return nil
	}
	if isYAML(name) {
		// Stored records are JSON; YAML ones are stored as osv.Parse read them.
		if data, err = json.Marshal(v); err != nil {
			c.recordErr(name, v.ID, err)
			return nil
		}
	} else if !json.Valid(data) {
		// osv.Parse reads the first JSON value only.
		c.recordErr(name, v.ID, errors.New("not valid JSON (something follows the record)"))
		return nil
	}
	k := store.VulnKey{Kind: store.VulnOSV, ID: v.ID}
	if !c.see(name, k, h) {
		return nil
	}
	if c.stored[k] == h {
		return nil
	}
	c.cands = append(c.cands, candidate{file: name, v: v, rec: store.VulnRecord{
		Kind: store.VulnOSV, ID: v.ID, Hash: h, Modified: v.Modified, Ecosystems: ecosystemsOf(v), Data: data,
	}})
	return nil
}

func isYAML(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return true
	}
	return false
}

// feed reads a file that is not an OSV record as a CVE severity feed.
func (c *collector) feed(name string, data []byte) {
	head := data[:min(len(data), sniffLimit)]
	var ratings []severity.CVERating
	switch {
	case bytes.Contains(head, []byte(`"vulnerabilities"`)):
		rs, err := severity.ParseNVD(name, data)
		ratings = rs
		if err != nil {
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) && rs != nil {
				for _, e := range joined.Unwrap() {
					c.recordErr(name, "", e)
				}
			} else {
				c.recordErr(name, "", err)
			}
		}
	case bytes.Contains(data, []byte(`"cveMetadata"`)):
		r, ok, err := severity.ParseCVE5(name, data)
		if err != nil {
			c.recordErr(name, "", err)
			return
		}
		if ok {
			ratings = []severity.CVERating{r}
		} else {
			// A rejected or unrated CVE counts as read, with nothing to keep.
			c.read++
			c.progress()
		}
	default:
		c.recordErr(name, "", errors.New("not an OSV record (no id), an NVD CVE API 2.0 document or a CVE JSON 5 record"))
		return
	}
	nvd := !bytes.Contains(data, []byte(`"cveMetadata"`))
	for _, r := range ratings {
		c.read++
		// A CVE rated by both feeds takes NVD's rating (its Primary
		// metric is NVD's own analysis), else the first one read.
		if prev, dup := c.ratings[r.ID]; dup && (prev.nvd || !nvd) {
			continue
		}
		c.ratings[r.ID] = cveEntry{rating: r.Rating, file: name, nvd: nvd}
	}
	c.progress()
}

// cveEntry is a CVE's rating read from a feed file.
type cveEntry struct {
	rating severity.Rating
	file   string
	nvd    bool
}

// ecosystemsOf lists the ecosystems v names, with their base ecosystems
// ("Alpine:v3.9" and "Alpine"), sorted and without duplicates.
func ecosystemsOf(v *osv.Vulnerability) []string {
	var out []string
	for _, a := range v.Affected {
		e := a.Package.Ecosystem
		if e == "" || strings.ContainsRune(e, '\n') {
			continue
		}
		out = append(out, e)
		if base := ecosystem.Split(e).Base; base != e && base != "" {
			out = append(out, base)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// finish validates the new and changed OSV records the way the index will
// read them (match.Build) and returns the records to write. A record the
// index would leave out, or whose every affected entry it would ignore, is
// skipped with its errors; one with some entries ignored is kept, and the
// ignored entries are reported.
func (c *collector) finish() []store.VulnRecord {
	vulns := make([]*osv.Vulnerability, len(c.cands))
	for i, cd := range c.cands {
		vulns[i] = cd.v
	}
	_, errs := match.Build(vulns, nil)
	dropped := map[string]bool{}
	ignored := map[string]int{}
	byID := map[string][]error{}
	for _, err := range errs {
		var re *match.RecordError
		if !errors.As(err, &re) {
			continue
		}
		byID[re.ID] = append(byID[re.ID], err)
		if re.Dropped {
			dropped[re.ID] = true
		} else {
			ignored[re.ID]++
		}
	}
	out := make([]store.VulnRecord, 0, len(c.cands)+len(c.ratings))
	for _, cd := range c.cands {
		id := cd.v.ID
		for _, err := range byID[id] {
			c.errs = append(c.errs, &RecordError{Source: c.source, File: cd.file, ID: id, Err: err})
		}
		allIgnored := !dropped[id] && ignored[id] > 0 && ignored[id] >= len(cd.v.Affected)
		if allIgnored {
			c.errs = append(c.errs, &RecordError{Source: c.source, File: cd.file, ID: id,
				Err: errors.New("no affected entry is left to match: record left out")})
		}
		if dropped[id] || allIgnored {
			k := store.VulnKey{Kind: store.VulnOSV, ID: id}
			c.seen[k] = "" // keep the stored version, if any
			c.changed--
			continue
		}
		out = append(out, cd.rec)
	}
	for id, e := range c.ratings {
		js, err := json.Marshal(e.rating)
		if err != nil {
			c.errs = append(c.errs, &RecordError{Source: c.source, File: e.file, ID: id, Err: err})
			continue
		}
		k := store.VulnKey{Kind: store.VulnCVE, ID: id}
		h := hashOf(js)
		c.seen[k] = h
		if c.stored[k] != h {
			c.changed++
			out = append(out, store.VulnRecord{Kind: store.VulnCVE, ID: id, Hash: h, Data: js})
		}
	}
	return out
}
