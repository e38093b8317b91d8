package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Vulndb configures the vulnerability database (package vulndb).
type Vulndb struct {
	// Sources are what `customs vulndb update` and the scheduled update
	// import: OSV all.zip exports, directories of OSV records and CVE
	// feeds, as URLs or paths.
	Sources VulnSources `yaml:"sources"`
	// UpdateInterval is how often the server updates from Sources; 0
	// disables scheduled updates.
	UpdateInterval Duration `yaml:"updateInterval"`
	// MaxRecordSize caps one record file (a zip entry or a file) in bytes;
	// larger ones are skipped and reported.
	MaxRecordSize int64 `yaml:"maxRecordSize"`
	// MaxSourceSize caps everything one source expands to, and a URL's
	// download, in bytes; a source over it fails as a whole.
	MaxSourceSize int64 `yaml:"maxSourceSize"`
	// ChangeLogRetention is how long the changes of a database revision
	// stay in the change log reverse matching reads ("what changed since
	// revision N"); a consumer further behind matches everything again. 0
	// keeps them forever.
	ChangeLogRetention Duration `yaml:"changeLogRetention"`
}

// VulnSource is one vulnerability data source: a name and either a URL or
// a path.
type VulnSource struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url,omitempty"`
	Path string `yaml:"path,omitempty"`
}

// Location is the source's URL or path.
func (s VulnSource) Location() string {
	if s.URL != "" {
		return s.URL
	}
	return s.Path
}

// VulnSources is the list of sources. In an environment variable it is
// written "name=location,name=location" (a location starting with http://
// or https:// is a URL, anything else a path).
type VulnSources []VulnSource

// UnmarshalText parses the environment variable form.
func (v *VulnSources) UnmarshalText(b []byte) error {
	var out VulnSources
	for _, item := range strings.Split(string(b), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, loc, ok := strings.Cut(item, "=")
		name, loc = strings.TrimSpace(name), strings.TrimSpace(loc)
		if !ok || name == "" || loc == "" {
			return fmt.Errorf("%q is not name=location", item)
		}
		s := VulnSource{Name: name}
		if isHTTPURL(loc) {
			s.URL = loc
		} else {
			s.Path = loc
		}
		out = append(out, s)
	}
	*v = out
	return nil
}

func isHTTPURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

func defaultVulndb() Vulndb {
	return Vulndb{
		UpdateInterval: Duration(24 * time.Hour),
		MaxRecordSize:  4 << 20,
		MaxSourceSize:  4 << 30,
		// Long enough for a replica down over a holiday to catch up.
		ChangeLogRetention: Duration(30 * 24 * time.Hour),
	}
}

// validateVulndb checks the vulndb keys.
func (c *Config) validateVulndb(bad func(key, format string, args ...any)) {
	v := c.Vulndb
	names := map[string]bool{}
	locs := map[string]bool{}
	for i, s := range v.Sources {
		key := fmt.Sprintf("vulndb.sources[%d]", i)
		switch {
		case s.Name == "":
			bad(key+".name", "must not be empty")
		case names[s.Name]:
			bad(key+".name", "%q names two sources", s.Name)
		}
		names[s.Name] = true
		switch {
		case (s.URL == "") == (s.Path == ""):
			bad(key, "needs exactly one of url and path")
		case s.URL != "":
			u, err := url.Parse(s.URL)
			if err != nil || !isHTTPURL(s.URL) || u.Host == "" {
				bad(key+".url", "%q is not an http(s) URL", s.URL)
			}
		}
		if loc := s.Location(); loc != "" {
			if locs[loc] {
				bad(key, "%s is read by two sources", loc)
			}
			locs[loc] = true
		}
	}
	if v.UpdateInterval < 0 || (v.UpdateInterval > 0 && v.UpdateInterval < Duration(time.Minute)) {
		bad("vulndb.updateInterval", "must be 0 (no scheduled updates) or at least 1m, got %s", v.UpdateInterval)
	}
	if v.ChangeLogRetention < 0 || (v.ChangeLogRetention > 0 && v.ChangeLogRetention < Duration(time.Hour)) {
		bad("vulndb.changeLogRetention", "must be 0 (keep forever) or at least 1h, got %s", v.ChangeLogRetention)
	}
	if v.MaxRecordSize < 64<<10 {
		bad("vulndb.maxRecordSize", "must be at least 65536 (64 KiB), got %d", v.MaxRecordSize)
	}
	if v.MaxSourceSize < v.MaxRecordSize {
		bad("vulndb.maxSourceSize", "must be at least vulndb.maxRecordSize (%d), got %d", v.MaxRecordSize, v.MaxSourceSize)
	}
}
