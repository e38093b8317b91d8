package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAdmissionKeys(t *testing.T) {
	d := Default().Admission
	if d.Addr != "" || !reflect.DeepEqual(d.ExemptNamespaces, []string{"kube-system", "customs"}) ||
		d.Cache.AllowTTL != Duration(time.Minute) || d.Cache.DenyTTL != Duration(10*time.Second) || d.EnvironmentLabel != "customs.dev/environment" {
		t.Errorf("defaults %+v", d)
	}
	c, err := Load("", []string{
		"CUSTOMS_ADMISSION_ADDR=:8443",
		"CUSTOMS_ADMISSION_ENVIRONMENTS=production=production,prod-*;staging=staging,test",
		"CUSTOMS_ADMISSION_EXEMPT_NAMESPACES=kube-system,customs,ops-*",
		"CUSTOMS_ADMISSION_CACHE_DENY_TTL=5s",
		"CUSTOMS_ADMISSION_REGISTRY_HOSTS=registry.corp.example,10.0.0.1:5000",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := c.Admission
	if a.Addr != ":8443" || a.Cache.DenyTTL != Duration(5*time.Second) || len(a.ExemptNamespaces) != 3 || len(a.RegistryHosts) != 2 {
		t.Errorf("from the environment: %+v", a)
	}
	want := EnvironmentMap{"production": {"production", "prod-*"}, "staging": {"staging", "test"}}
	if !reflect.DeepEqual(a.Environments, want) {
		t.Errorf("environments %v, want %v", a.Environments, want)
	}
	if got := a.Environments.String(); got != "production=production,prod-*;staging=staging,test" {
		t.Errorf("String() = %q", got)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("admission:\n  addr: 127.0.0.1:0\n  environments:\n    production: [production, prod-*]\n    development: [dev-*]\n  tls: {cert: a.pem, key: b.pem}\n"), 0o644)
	c, err = Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Admission.Environments) != 2 || c.Admission.TLS.Cert != "a.pem" {
		t.Errorf("from YAML: %+v", c.Admission)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		set  func(*Admission)
		key  string
	}{
		{"bad addr", func(a *Admission) { a.Addr = "8443" }, "admission.addr:"},
		{"cert without key", func(a *Admission) { a.TLS.Cert = "x" }, "admission.tls.cert:"},
		{"bad glob", func(a *Admission) { a.Environments = EnvironmentMap{"prod": {"prod-["}} }, "admission.environments.prod:"},
		{"upper case namespace", func(a *Admission) { a.Environments = EnvironmentMap{"prod": {"Prod"}} }, "admission.environments.prod:"},
		{"empty list", func(a *Admission) { a.Environments = EnvironmentMap{"prod": {}} }, "admission.environments.prod: lists no namespaces"},
		{"namespace twice", func(a *Admission) { a.Environments = EnvironmentMap{"a": {"x"}, "b": {"x"}} }, "is also mapped"},
		{"bad exempt", func(a *Admission) { a.ExemptNamespaces = []string{"kube system"} }, "admission.exemptNamespaces[0]:"},
		{"registry host with scheme", func(a *Admission) { a.RegistryHosts = []string{"https://r.example"} }, "admission.registryHosts[0]:"},
		{"slow resolve", func(a *Admission) { a.ResolveTimeout = Duration(time.Minute) }, "admission.resolveTimeout:"},
		{"zero deny ttl", func(a *Admission) { a.Cache.DenyTTL = 0 }, "admission.cache.denyTTL:"},
		{"no label", func(a *Admission) { a.EnvironmentLabel = "" }, "admission.environmentLabel:"},
		{"workload audit too often", func(a *Admission) { a.WorkloadAudit.Interval = Duration(time.Second) }, "admission.workloadAudit.interval:"},
		{"negative workload audit interval", func(a *Admission) { a.WorkloadAudit.Interval = Duration(-time.Hour) }, "admission.workloadAudit.interval:"},
		{"no debounce", func(a *Admission) { a.WorkloadAudit.Debounce = 0 }, "admission.workloadAudit.debounce:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.set(&c.Admission)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("Validate = %v, want an error naming %s", err, tc.key)
			}
		})
	}
	var m EnvironmentMap
	if err := m.UnmarshalText([]byte("production")); err == nil {
		t.Error("an entry without '=' was accepted")
	}
}

// FuzzEnvironmentMap: any text either fails to parse or parses into a
// mapping whose String form parses back to the same mapping.
func FuzzEnvironmentMap(f *testing.F) {
	for _, s := range []string{"production=production,prod-*;staging=staging,test", "", ";;", "a=", "=b", "a=b;a=c", "x=y,,z; "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var m EnvironmentMap
		if err := m.UnmarshalText([]byte(s)); err != nil {
			return
		}
		var back EnvironmentMap
		if err := back.UnmarshalText([]byte(m.String())); err != nil {
			t.Fatalf("%q parsed to %v, whose String %q does not parse: %v", s, m, m.String(), err)
		}
		if len(back) != len(m) {
			t.Fatalf("%q: %v round-trips to %v", s, m, back)
		}
	})
}
