package config

import (
	"fmt"
	"net"
	"path"
	"sort"
	"strings"
	"time"
)

// Admission configures the Kubernetes admission webhook listener (package
// admission; docs/admission.md).
type Admission struct {
	// Addr is the webhook's TLS listen address (":8443"); empty turns
	// admission off.
	Addr string `yaml:"addr"`
	// TLS names the serving certificate; without files a CA and a
	// certificate are generated into <dataDir>/admission-tls.
	TLS AdmissionTLS `yaml:"tls"`
	// DNSNames are the names (and IPs) the generated certificate is valid
	// for; empty means localhost, 127.0.0.1 and the customs-admission
	// Service's names in namespace customs.
	DNSNames []string `yaml:"dnsNames"`
	// Environments maps environment names to namespace names or globs
	// ({production: [production, "prod-*"]}); as an environment variable:
	// "production=production,prod-*;staging=staging".
	Environments EnvironmentMap `yaml:"environments"`
	// EnvironmentLabel is the namespace label naming a namespace's
	// environment; it wins over Environments when cluster credentials let
	// customs read namespaces.
	EnvironmentLabel string `yaml:"environmentLabel"`
	// Kubeconfig is the cluster credentials file used to read namespace
	// labels; empty means the in-cluster service account when customs runs
	// in a pod, and no label lookups otherwise.
	Kubeconfig string `yaml:"kubeconfig"`
	// ExemptNamespaces are namespace names or globs admission does not
	// check.
	ExemptNamespaces []string `yaml:"exemptNamespaces"`
	// RegistryHosts are the host[:port] names under which the cluster
	// reaches customs' registry; empty means 127.0.0.1:PORT and
	// localhost:PORT of the registry listener, plus externalURL's host.
	RegistryHosts []string `yaml:"registryHosts"`
	// ResolveExternal resolves tags of images outside customs to digests
	// with a registry HEAD request (for the mutating webhook's pinning).
	ResolveExternal bool `yaml:"resolveExternal"`
	// ResolveTimeout bounds one such request.
	ResolveTimeout Duration `yaml:"resolveTimeout"`
	// Cache holds the decision and resolution cache's lifetimes.
	Cache AdmissionCache `yaml:"cache"`
	// WorkloadAudit configures the periodic audit of running workloads
	// (with cluster credentials; docs/admission.md).
	WorkloadAudit AdmissionWorkloadAudit `yaml:"workloadAudit"`
}

// AdmissionWorkloadAudit configures the audit of the workloads running in
// the cluster (package workloadaudit).
type AdmissionWorkloadAudit struct {
	// Interval is how old the last result may grow before the audit runs
	// again; 0 turns the audit off.
	Interval Duration `yaml:"interval"`
	// Debounce is how long after the policy or vulnerability revision
	// changed the audit waits for further changes before it runs.
	Debounce Duration `yaml:"debounce"`
}

// AdmissionTLS names PEM files.
type AdmissionTLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// AdmissionCache configures how long admission keeps decisions and tag
// resolutions.
type AdmissionCache struct {
	// AllowTTL is how long allowed (and warned) decisions and resolved
	// tags are kept.
	AllowTTL Duration `yaml:"allowTTL"`
	// DenyTTL is how long denials (and unresolved tags) are kept.
	DenyTTL Duration `yaml:"denyTTL"`
}

// DefaultAdmissionExempt are the namespaces exempt by default.
var DefaultAdmissionExempt = []string{"kube-system", "customs"}

func defaultAdmission() Admission {
	return Admission{
		EnvironmentLabel: "customs.dev/environment",
		ExemptNamespaces: append([]string(nil), DefaultAdmissionExempt...),
		ResolveTimeout:   Duration(2 * time.Second),
		Cache:            AdmissionCache{AllowTTL: Duration(time.Minute), DenyTTL: Duration(10 * time.Second)},
		WorkloadAudit:    AdmissionWorkloadAudit{Interval: Duration(time.Hour), Debounce: Duration(2 * time.Second)},
	}
}

// EnvironmentMap maps environment names to namespace names or globs.
type EnvironmentMap map[string][]string

// UnmarshalText reads "env=ns,ns-*;env2=ns2" (environment variables and
// flags).
func (m *EnvironmentMap) UnmarshalText(b []byte) error {
	out := EnvironmentMap{}
	for _, part := range strings.Split(string(b), ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		env, list, ok := strings.Cut(part, "=")
		env = strings.TrimSpace(env)
		if !ok || env == "" {
			return fmt.Errorf("%q is not env=namespace,namespace (entries separated by ';')", part)
		}
		for _, ns := range strings.Split(list, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				out[env] = append(out[env], ns)
			}
		}
	}
	*m = out
	return nil
}

// String writes the form UnmarshalText reads, environments sorted.
func (m EnvironmentMap) String() string {
	envs := make([]string, 0, len(m))
	for e := range m {
		envs = append(envs, e)
	}
	sort.Strings(envs)
	parts := make([]string, len(envs))
	for i, e := range envs {
		parts[i] = e + "=" + strings.Join(m[e], ",")
	}
	return strings.Join(parts, ";")
}

// validateAdmission checks the admission keys.
func (c *Config) validateAdmission(bad func(key, format string, args ...any)) {
	a := c.Admission
	if a.Addr != "" {
		if _, _, err := net.SplitHostPort(a.Addr); err != nil {
			bad("admission.addr", "%q is not host:port (for example \":8443\")", a.Addr)
		}
	}
	if (a.TLS.Cert == "") != (a.TLS.Key == "") {
		bad("admission.tls.cert", "admission.tls.cert and admission.tls.key must be given together")
	}
	for i, n := range a.DNSNames {
		if n == "" || strings.ContainsAny(n, " /") {
			bad(fmt.Sprintf("admission.dnsNames[%d]", i), "%q is not a DNS name or IP", n)
		}
	}
	seen := map[string]string{}
	for env, globs := range a.Environments {
		key := "admission.environments." + env
		if strings.TrimSpace(env) == "" {
			bad("admission.environments", "an environment name is empty")
		}
		if len(globs) == 0 {
			bad(key, "lists no namespaces")
		}
		for _, g := range globs {
			if err := checkNamespaceGlob(g); err != nil {
				bad(key, "%v", err)
			}
			if other, dup := seen[g]; dup && other != env {
				bad(key, "namespace %q is also mapped to environment %q", g, other)
			}
			seen[g] = env
		}
	}
	if a.EnvironmentLabel == "" {
		bad("admission.environmentLabel", "must not be empty")
	}
	for i, g := range a.ExemptNamespaces {
		if err := checkNamespaceGlob(g); err != nil {
			bad(fmt.Sprintf("admission.exemptNamespaces[%d]", i), "%v", err)
		}
	}
	for i, h := range a.RegistryHosts {
		if h == "" || strings.ContainsAny(h, "/ ") || strings.Contains(h, "://") {
			bad(fmt.Sprintf("admission.registryHosts[%d]", i), "%q is not host[:port] (no scheme, no path)", h)
		}
	}
	if a.ResolveTimeout < Duration(100*time.Millisecond) || a.ResolveTimeout > Duration(10*time.Second) {
		bad("admission.resolveTimeout", "must be between 100ms and 10s (webhooks answer within seconds), got %s", a.ResolveTimeout)
	}
	if a.Cache.AllowTTL <= 0 || a.Cache.AllowTTL > Duration(time.Hour) {
		bad("admission.cache.allowTTL", "must be more than 0 and at most 1h, got %s", a.Cache.AllowTTL)
	}
	if a.Cache.DenyTTL <= 0 || a.Cache.DenyTTL > Duration(time.Hour) {
		bad("admission.cache.denyTTL", "must be more than 0 and at most 1h, got %s", a.Cache.DenyTTL)
	}
	if iv := a.WorkloadAudit.Interval; iv != 0 && (iv < Duration(10*time.Second) || iv > Duration(7*24*time.Hour)) {
		bad("admission.workloadAudit.interval", "must be 0 (no audit of running workloads) or between 10s and 168h, got %s", iv)
	}
	if d := a.WorkloadAudit.Debounce; d < Duration(100*time.Millisecond) || d > Duration(5*time.Minute) {
		bad("admission.workloadAudit.debounce", "must be between 100ms and 5m, got %s", d)
	}
}

// checkNamespaceGlob accepts a namespace name or a glob ('*', '?',
// '[...]') over one.
func checkNamespaceGlob(g string) error {
	if g == "" {
		return fmt.Errorf("a namespace name or glob is empty")
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("%q is not a valid glob: %v", g, err)
	}
	for _, r := range g {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-*?[]^!", r)) {
			return fmt.Errorf("%q holds %q, which no namespace name can hold", g, r)
		}
	}
	return nil
}
