package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVulndbFromFileAndEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yml := `vulndb:
  sources:
    - name: go
      url: https://osv-vulnerabilities.storage.googleapis.com/Go/all.zip
    - name: local
      path: /srv/osv
  updateInterval: 6h
  maxRecordSize: 1048576
  changeLogRetention: 7d
`
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	v := c.Vulndb
	if len(v.Sources) != 2 || v.Sources[0].Location() != "https://osv-vulnerabilities.storage.googleapis.com/Go/all.zip" ||
		v.Sources[1].Location() != "/srv/osv" || v.UpdateInterval != Duration(6*time.Hour) || v.MaxRecordSize != 1<<20 ||
		v.MaxSourceSize != 4<<30 || v.ChangeLogRetention != Duration(7*24*time.Hour) {
		t.Fatalf("vulndb = %+v", v)
	}
	c, err = Load(path, []string{"CUSTOMS_VULNDB_SOURCES=pypi=https://mirror/PyPI/all.zip, alpine = ./data/alpine ", "CUSTOMS_VULNDB_UPDATE_INTERVAL=0",
		"CUSTOMS_VULNDB_CHANGE_LOG_RETENTION=0"})
	if err != nil {
		t.Fatal(err)
	}
	want := VulnSources{{Name: "pypi", URL: "https://mirror/PyPI/all.zip"}, {Name: "alpine", Path: "./data/alpine"}}
	if len(c.Vulndb.Sources) != 2 || c.Vulndb.Sources[0] != want[0] || c.Vulndb.Sources[1] != want[1] || c.Vulndb.UpdateInterval != 0 ||
		c.Vulndb.ChangeLogRetention != 0 {
		t.Fatalf("from the environment: %+v", c.Vulndb)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("", []string{"CUSTOMS_VULNDB_SOURCES=justaname"}); err == nil || !strings.Contains(err.Error(), "CUSTOMS_VULNDB_SOURCES: vulndb.sources") || !strings.Contains(err.Error(), "name=location") {
		t.Fatalf("bad env list: %v", err)
	}
}

func TestVulndbValidation(t *testing.T) {
	c := Default()
	c.Vulndb.Sources = VulnSources{
		{Name: "a", URL: "ftp://x/all.zip"},
		{Name: "a", Path: "/p"},
		{Name: "", Path: "/q"},
		{Name: "both", URL: "https://x/all.zip", Path: "/r"},
		{Name: "dup-loc", Path: "/p"},
	}
	c.Vulndb.UpdateInterval = Duration(time.Second)
	c.Vulndb.MaxRecordSize = 10
	c.Vulndb.ChangeLogRetention = Duration(time.Minute)
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		"vulndb.sources[0].url: \"ftp://x/all.zip\" is not an http(s) URL",
		"vulndb.sources[1].name: \"a\" names two sources",
		"vulndb.sources[2].name: must not be empty",
		"vulndb.sources[3]: needs exactly one of url and path",
		"vulndb.sources[4]: /p is read by two sources",
		"vulndb.updateInterval:",
		"vulndb.maxRecordSize:",
		"vulndb.changeLogRetention: must be 0 (keep forever) or at least 1h, got 1m0s",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}
