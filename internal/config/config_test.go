package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"addr":                      "CUSTOMS_ADDR",
		"dataDir":                   "CUSTOMS_DATA_DIR",
		"tls.certFile":              "CUSTOMS_TLS_CERT_FILE",
		"auth.tokenTTL":             "CUSTOMS_AUTH_TOKEN_TTL",
		"externalURL":               "CUSTOMS_EXTERNAL_URL",
		"registry.maxManifestBytes": "CUSTOMS_REGISTRY_MAX_MANIFEST_BYTES",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "customs.yaml")
	yml := "addr: \":6000\"\ndataDir: /var/lib/customs\ngc:\n  interval: 2d\ntls:\n  hosts: [a.example]\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"CUSTOMS_ADDR=:7000", "CUSTOMS_ADMIN_PASSWORD=ignored", "PATH=/bin", "CUSTOMS_LOG_FORMAT=json"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":7000" {
		t.Errorf("env should override file: addr=%q", c.Addr)
	}
	if c.DataDir != "/var/lib/customs" {
		t.Errorf("file should override default: dataDir=%q", c.DataDir)
	}
	if c.GC.Interval.Std() != 48*time.Hour {
		t.Errorf("gc.interval = %s", c.GC.Interval)
	}
	if c.Log.Format != "json" {
		t.Errorf("log.format = %q", c.Log.Format)
	}
	if len(c.TLS.Hosts) != 1 || c.TLS.Hosts[0] != "a.example" {
		t.Errorf("tls.hosts = %v", c.TLS.Hosts)
	}
	if c.GC.GracePeriod != Default().GC.GracePeriod {
		t.Errorf("untouched key lost its default")
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{name: "unknown key", yaml: "addr: \":1\"\nlistn: x\n", want: "line 2 (listn): field listn not found"},
		{name: "unknown nested key", yaml: "gc:\n  intervl: 1h\n", want: "line 2 (gc.intervl): field intervl not found"},
		{name: "bad duration", yaml: "gc:\n  interval: soon\n", want: `line 2 (gc.interval): "soon" is not a duration`},
		{name: "bad number", yaml: "registry:\n  maxManifestBytes: lots\n", want: "line 2 (registry.maxManifestBytes): cannot unmarshal"},
		{name: "bad value among others", yaml: "log:\n  level: debug\ngc:\n  grace: 1h\n  interval:\n    - 1h\n",
			want: "line 6 (gc.interval): expected a duration"},
		{name: "flow mapping", yaml: "gc: {interval: soon}\n", want: "(gc, gc.interval)"},
		{name: "not a mapping", yaml: "- a\n- b\n", want: "line 1: cannot unmarshal"},
		{name: "bad env bool", env: []string{"CUSTOMS_TLS_GENERATE=perhaps"}, want: "CUSTOMS_TLS_GENERATE: tls.generate"},
		{name: "bad env int", env: []string{"CUSTOMS_REGISTRY_MAX_MANIFEST_BYTES=lots"}, want: "registry.maxManifestBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = filepath.Join(t.TempDir(), "c.yaml")
				if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(path, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateNamesEveryBadKey(t *testing.T) {
	c := Default()
	c.Addr = "nonsense"
	c.Database.Driver = "mysql"
	c.Auth.TokenTTL = Duration(time.Second)
	c.Log.Level = "loud"
	c.Registry.MaxManifestBytes = 1024
	c.Registry.ManifestCacheBytes = -1
	c.TLS.CertFile = "x.pem"
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, key := range []string{"addr:", "database.driver:", "auth.tokenTTL:", "log.level:", "registry.maxManifestBytes:", "registry.manifestCacheBytes:", "tls.certFile:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}

func TestEmptyFileMeansDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != Default().Addr {
		t.Fatalf("addr = %q", c.Addr)
	}
}

func TestSetUnknownKey(t *testing.T) {
	c := Default()
	if err := c.Set("nope.key", "1"); err == nil || !strings.Contains(err.Error(), `"nope.key"`) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzLoadYAML(f *testing.F) {
	f.Add([]byte("addr: \":5000\"\ngc:\n  interval: 1d\n"))
	f.Add([]byte("tls: {hosts: [a, b]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		_ = decodeYAML(data, &c) // must not panic
		_ = c.Validate()
	})
}

// audit.skip comes from the file or from CUSTOMS_AUDIT_SKIP (comma
// separated) and takes only the skippable actions, naming the key otherwise.
func TestAuditSkip(t *testing.T) {
	c, err := Load("", []string{"CUSTOMS_AUDIT_SKIP=artifact.pull,token.issue"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Audit.Skip, " ") != "artifact.pull token.issue" {
		t.Fatalf("audit.skip = %q", c.Audit.Skip)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("audit:\n  skip: [artifact.pull, user.login]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `audit.skip: "user.login" is not one of artifact.pull, token.issue`) {
		t.Fatalf("err = %v, want audit.skip refusing user.login", err)
	}
	if len(Default().Audit.Skip) != 0 {
		t.Fatal("by default an action is skipped")
	}
}
