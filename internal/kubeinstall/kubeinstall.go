// Package kubeinstall builds the Kubernetes objects that install customs'
// admission doors in a cluster — namespace, service account, RBAC, TLS
// secret, Deployment, Service, the validating and mutating webhook
// configurations — and the API server files for the ImagePolicyWebhook
// admission plugin (an AdmissionConfiguration and its kubeconfig). It uses
// the k8s.io/api types and prints YAML with sigs.k8s.io/yaml, so what it
// prints is what the API server's own schema says.
//
// The package does no I/O besides generating certificates (in memory); the
// CLI (`customs admission manifests`) reads files and prints.
package kubeinstall

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/certs"
)

// Paths the admission listener serves (the contract of internal/admission).
const (
	ValidatePath    = "/validate"
	MutatePath      = "/mutate"
	ImageReviewPath = "/imagereview"
	HealthzPath     = "/healthz"
)

// Webhook names inside the configurations.
const (
	ValidatingWebhookName = "validate.customs.dev"
	MutatingWebhookName   = "mutate.customs.dev"
)

// ExemptLabel is the immutable label the API server puts on every
// namespace (its name); the webhooks' namespaceSelector excludes the
// exempt namespaces by it, so relabelling a namespace cannot exempt it.
const ExemptLabel = "kubernetes.io/metadata.name"

// Options says what to generate. The zero value is not valid: use
// DefaultOptions and change fields.
type Options struct {
	// Namespace is where customs runs (and is exempt).
	Namespace string
	// Name names the cluster-wide objects (webhook configurations,
	// ClusterRole, ClusterRoleBinding) and prefixes the namespaced ones.
	Name string
	// ServiceName is the Service the webhooks call (port 443).
	ServiceName string
	// Image is customs' container image.
	Image string
	// ConfigSecret names a Secret holding customs' config.yaml (key
	// config.yaml), mounted into the Deployment and read with
	// CUSTOMS_CONFIG; empty means none (then customs runs on its embedded
	// defaults: SQLite in an emptyDir).
	ConfigSecret string
	// Replicas is the Deployment's replica count; more than one needs a
	// shared database (PostgreSQL, through ConfigSecret).
	Replicas int32
	// URL, when set, is where the API server reaches customs running
	// outside the cluster (https://host:port): the webhooks use it instead
	// of the Service, and no Deployment, Service or TLS Secret is
	// generated.
	URL string
	// ExemptNamespaces are excluded by the namespaceSelector (by
	// ExemptLabel); Namespace is always added.
	ExemptNamespaces []string
	// NamespaceLabels, when set, limit the webhooks to namespaces with all
	// these labels (a gradual rollout: label a namespace to enforce).
	NamespaceLabels map[string]string
	// TimeoutSeconds is each webhook's timeout (1 to 30).
	TimeoutSeconds int32
	// CAPEM, CertPEM and KeyPEM are the webhook serving certificate, its
	// key and the CA that signed it; empty means generated (a CA and a
	// certificate for the Service's DNS names). With URL only CAPEM is
	// needed (customs outside the cluster has its certificate).
	CAPEM, CertPEM, KeyPEM []byte
	// Now is the time generated certificates start from.
	Now time.Time
}

// DefaultOptions returns the defaults: namespace customs, Service
// customs-admission, image, kube-system and customs exempt, 5 s timeouts.
func DefaultOptions(image string) Options {
	return Options{
		Namespace:        "customs",
		Name:             "customs",
		ServiceName:      "customs-admission",
		Image:            image,
		Replicas:         1,
		ExemptNamespaces: []string{"kube-system"},
		TimeoutSeconds:   5,
		Now:              time.Now(),
	}
}

// Manifests is the generated install.
type Manifests struct {
	// Objects are the Kubernetes objects to apply, in order.
	Objects []any
	// CAPEM is the CA the webhooks trust (their caBundle).
	CAPEM []byte
}

// Build validates opts and returns the objects to apply. Errors are
// EINVALID and name the option.
func Build(opts Options) (*Manifests, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	m := &Manifests{}
	labels := map[string]string{"app.kubernetes.io/name": "customs", "app.kubernetes.io/component": "admission"}
	if opts.URL == "" {
		if len(opts.CAPEM) == 0 {
			ca, cert, key, err := generate(opts.dnsNames(), opts.Now)
			if err != nil {
				return nil, apperr.Wrap(err, apperr.EINTERNAL, "generating the webhook certificate")
			}
			opts.CAPEM, opts.CertPEM, opts.KeyPEM = ca, cert, key
		}
	}
	m.CAPEM = opts.CAPEM
	ns := opts.Namespace
	sa := opts.Name + "-admission"
	tlsSecret := opts.Name + "-admission-tls"

	m.Objects = append(m.Objects,
		&corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels},
		},
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns, Labels: labels},
		},
		&rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: opts.Name + "-admission", Labels: labels},
			Rules: []rbacv1.PolicyRule{
				// Namespace labels name environments; pods are what
				// `customs audit workloads` and the periodic audit read.
				{APIGroups: []string{""}, Resources: []string{"namespaces", "pods"}, Verbs: []string{"get", "list", "watch"}},
			},
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: opts.Name + "-admission", Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: opts.Name + "-admission"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
		},
	)
	if opts.URL == "" {
		m.Objects = append(m.Objects,
			&corev1.Secret{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: metav1.ObjectMeta{Name: tlsSecret, Namespace: ns, Labels: labels},
				Type:       corev1.SecretTypeTLS,
				Data: map[string][]byte{
					corev1.TLSCertKey:       opts.CertPEM,
					corev1.TLSPrivateKeyKey: opts.KeyPEM,
					"ca.crt":                opts.CAPEM,
				},
			},
			&corev1.Service{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
				ObjectMeta: metav1.ObjectMeta{Name: opts.ServiceName, Namespace: ns, Labels: labels},
				Spec: corev1.ServiceSpec{
					Selector: labels,
					Ports: []corev1.ServicePort{
						{Name: "webhook", Port: 443, TargetPort: intstr.FromString("webhook")},
						{Name: "registry", Port: 5000, TargetPort: intstr.FromString("registry")},
					},
				},
			},
			deployment(opts, labels, sa, tlsSecret),
		)
	}
	m.Objects = append(m.Objects, validating(opts, labels), mutating(opts, labels))
	return m, nil
}

func (o *Options) validate() error {
	bad := func(format string, args ...any) error { return apperr.Errorf(apperr.EINVALID, format, args...) }
	for flag, v := range map[string]string{"namespace": o.Namespace, "service-name": o.ServiceName} {
		if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
			return bad("--%s %q: %s", flag, v, strings.Join(errs, "; "))
		}
	}
	if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
		return bad("--name %q: %s", o.Name, strings.Join(errs, "; "))
	}
	if o.URL == "" && strings.TrimSpace(o.Image) == "" {
		return bad("--image must name customs' container image")
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return bad("--url %q: want https://HOST[:PORT] (the API server calls HTTPS only; the paths %s, %s and %s are added)",
				o.URL, ValidatePath, MutatePath, ImageReviewPath)
		}
		o.URL = strings.TrimSuffix(o.URL, "/")
		if len(o.CAPEM) == 0 {
			return bad("--url needs --ca: the CA that verifies customs' admission listener (customs serve writes a generated one to <data dir>/admission-tls/ca.crt)")
		}
	}
	if len(o.CAPEM) > 0 {
		if err := checkCA(o.CAPEM); err != nil {
			return bad("--ca: %v", err)
		}
	}
	given := 0
	for _, b := range [][]byte{o.CAPEM, o.CertPEM, o.KeyPEM} {
		if len(b) > 0 {
			given++
		}
	}
	if o.URL == "" && given != 0 && given != 3 {
		return bad("--ca, --cert and --key go together (or none of them, to generate a CA and certificate)")
	}
	if o.Replicas < 1 {
		return bad("--replicas %d: at least 1", o.Replicas)
	}
	if o.Replicas > 1 && o.ConfigSecret == "" && o.URL == "" {
		return bad("--replicas %d needs --config-secret with a shared database (PostgreSQL): each replica would otherwise have its own SQLite data", o.Replicas)
	}
	if o.TimeoutSeconds < 1 || o.TimeoutSeconds > 30 {
		return bad("--timeout %d: the API server allows 1 to 30 seconds", o.TimeoutSeconds)
	}
	for _, n := range o.ExemptNamespaces {
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			return bad("--exempt-namespace %q: %s", n, strings.Join(errs, "; "))
		}
	}
	for k, v := range o.NamespaceLabels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return bad("--namespace-label %s=%s: %s", k, v, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return bad("--namespace-label %s=%s: %s", k, v, strings.Join(errs, "; "))
		}
	}
	return nil
}

// checkCA reports whether pemBytes holds at least one CA certificate.
func checkCA(pemBytes []byte) error {
	rest := pemBytes
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no PEM CERTIFICATE block")
	}
	return nil
}

// dnsNames are the names the in-cluster Service answers to.
func (o *Options) dnsNames() []string {
	svc := o.ServiceName + "." + o.Namespace + ".svc"
	return []string{svc, svc + ".cluster.local"}
}

// exempt returns the exempt namespaces, customs' own included, without
// duplicates, in order.
func (o *Options) exempt() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range append(append([]string(nil), o.ExemptNamespaces...), o.Namespace) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func (o *Options) clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: o.CAPEM}
	if o.URL != "" {
		u := o.URL + path
		cc.URL = &u
		return cc
	}
	port := int32(443)
	cc.Service = &admissionregistrationv1.ServiceReference{Namespace: o.Namespace, Name: o.ServiceName, Path: &path, Port: &port}
	return cc
}

func (o *Options) namespaceSelector() *metav1.LabelSelector {
	sel := &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: ExemptLabel, Operator: metav1.LabelSelectorOpNotIn, Values: o.exempt()},
		},
	}
	if len(o.NamespaceLabels) > 0 {
		sel.MatchLabels = o.NamespaceLabels
	}
	return sel
}

// rules are the resources whose images are decided: pods (and their
// ephemeral containers, added through a subresource) and every built-in
// kind that carries a pod template.
func rules() []admissionregistrationv1.RuleWithOperations {
	scope := admissionregistrationv1.NamespacedScope
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: ops,
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources, Scope: &scope,
			},
		}
	}
	return []admissionregistrationv1.RuleWithOperations{
		rule("", "pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates"),
		rule("apps", "deployments", "replicasets", "statefulsets", "daemonsets"),
		rule("batch", "jobs", "cronjobs"),
	}
}

func validating(o Options, labels map[string]string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	equivalent := admissionregistrationv1.Equivalent
	timeout := o.TimeoutSeconds
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: labels},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    ValidatingWebhookName,
			ClientConfig:            o.clientConfig(ValidatePath),
			Rules:                   rules(),
			FailurePolicy:           &fail,
			MatchPolicy:             &equivalent,
			NamespaceSelector:       o.namespaceSelector(),
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

func mutating(o Options, labels map[string]string) *admissionregistrationv1.MutatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	equivalent := admissionregistrationv1.Equivalent
	never := admissionregistrationv1.NeverReinvocationPolicy
	timeout := o.TimeoutSeconds
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: labels},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    MutatingWebhookName,
			ClientConfig:            o.clientConfig(MutatePath),
			Rules:                   rules(),
			FailurePolicy:           &fail,
			MatchPolicy:             &equivalent,
			NamespaceSelector:       o.namespaceSelector(),
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      &never,
		}},
	}
}

func deployment(o Options, labels map[string]string, sa, tlsSecret string) *appsv1.Deployment {
	replicas := o.Replicas
	nonRoot := true
	uid := int64(65532) // an unprivileged user whatever the image's USER
	noEscalation := false
	readOnly := true
	const tlsDir = "/etc/customs/admission-tls"
	env := []corev1.EnvVar{
		{Name: "CUSTOMS_ADDR", Value: ":5000"},
		{Name: "CUSTOMS_DATA_DIR", Value: "/var/lib/customs"},
		{Name: "CUSTOMS_ADMISSION_ADDR", Value: ":8443"},
		{Name: "CUSTOMS_ADMISSION_TLS_CERT", Value: tlsDir + "/tls.crt"},
		{Name: "CUSTOMS_ADMISSION_TLS_KEY", Value: tlsDir + "/tls.key"},
	}
	// The root filesystem is read-only: the data dir and /tmp (scans
	// unpack layers there) are emptyDirs.
	mounts := []corev1.VolumeMount{
		{Name: "admission-tls", MountPath: tlsDir, ReadOnly: true},
		{Name: "data", MountPath: "/var/lib/customs"},
		{Name: "tmp", MountPath: "/tmp"},
	}
	volumes := []corev1.Volume{
		{Name: "admission-tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: tlsSecret}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	if o.ConfigSecret != "" {
		env = append(env, corev1.EnvVar{Name: "CUSTOMS_CONFIG", Value: "/etc/customs/config/config.yaml"})
		mounts = append(mounts, corev1.VolumeMount{Name: "config", MountPath: "/etc/customs/config", ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: o.ConfigSecret}}})
	}
	probe := func(path string, port string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromString(port), Scheme: schemeOf(port)}}, PeriodSeconds: 5}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: sa,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: &nonRoot, RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "customs",
						Image: o.Image,
						Args:  []string{"serve"},
						Env:   env,
						Ports: []corev1.ContainerPort{
							{Name: "registry", ContainerPort: 5000},
							{Name: "webhook", ContainerPort: 8443},
						},
						ReadinessProbe: probe("/readyz", "registry"),
						LivenessProbe:  probe(HealthzPath, "webhook"),
						VolumeMounts:   mounts,
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: &noEscalation,
							ReadOnlyRootFilesystem:   &readOnly,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
					Volumes: volumes,
				},
			},
		},
	}
}

func schemeOf(port string) corev1.URIScheme {
	if port == "webhook" {
		return corev1.URISchemeHTTPS
	}
	return corev1.URISchemeHTTP
}

// generate returns a new CA and a serving certificate for hosts signed by
// it, as PEM, made with internal/certs in a temporary directory.
func generate(hosts []string, now time.Time) (ca, cert, key []byte, err error) {
	dir, err := os.MkdirTemp("", "customs-manifests-")
	if err != nil {
		return nil, nil, nil, err
	}
	defer os.RemoveAll(dir)
	g, err := certs.Generate(filepath.Join(dir, "tls"), hosts, now)
	if err != nil {
		return nil, nil, nil, err
	}
	if ca, err = os.ReadFile(g.CAFile); err != nil {
		return nil, nil, nil, err
	}
	if cert, err = os.ReadFile(g.CertFile); err != nil {
		return nil, nil, nil, err
	}
	if key, err = os.ReadFile(g.KeyFile); err != nil {
		return nil, nil, nil, err
	}
	return ca, cert, key, nil
}

// YAML returns the objects as one YAML stream (documents separated by
// ---), without the empty status and creationTimestamp fields the Go types
// carry, ready for `kubectl apply -f -`.
func (m *Manifests) YAML() ([]byte, error) {
	var buf bytes.Buffer
	for i, obj := range m.Objects {
		b, err := cleanYAML(obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// cleanYAML marshals obj and drops the fields an unset object still
// prints: metadata.creationTimestamp (null), status ({}), and the pod
// template's creationTimestamp.
func cleanYAML(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	prune(m)
	return yaml.Marshal(m)
}

// prunable are the fields dropped when empty: defaults the Go types print,
// not settings (an empty emptyDir is kept).
var prunable = map[string]bool{"status": true, "spec": true, "metadata": true, "resources": true,
	"strategy": true, "loadBalancer": true}

func prune(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			if k == "creationTimestamp" {
				delete(m, k)
			}
		case map[string]any:
			prune(x)
			if len(x) == 0 && prunable[k] {
				delete(m, k)
			}
		case []any:
			for _, e := range x {
				if em, ok := e.(map[string]any); ok {
					prune(em)
				}
			}
		}
	}
}

// ImagePolicy are the API server files that turn on customs as
// ImagePolicyWebhook backend.
type ImagePolicy struct {
	// AdmissionConfig is the AdmissionConfiguration for
	// --admission-control-config-file.
	AdmissionConfig []byte
	// Kubeconfig is the webhook's kubeconfig: customs' /imagereview URL and
	// the CA that verifies it.
	Kubeconfig []byte
}

// ImagePolicyOptions configures BuildImagePolicy.
type ImagePolicyOptions struct {
	// URL is customs' admission listener as the API server reaches it
	// (https://host:port).
	URL string
	// CAPEM verifies the listener's certificate.
	CAPEM []byte
	// KubeconfigPath is where the kubeconfig will be on the API server's
	// host (the AdmissionConfiguration names it).
	KubeconfigPath string
	// AllowTTL and DenyTTL are how long the API server caches answers
	// (seconds); RetryBackoff is its wait between retries (milliseconds).
	AllowTTL, DenyTTL, RetryBackoff int
}

// admissionConfiguration mirrors apiserver.config.k8s.io/v1
// AdmissionConfiguration with the ImagePolicyWebhook plugin's
// configuration (types that live in k8s.io/apiserver and
// k8s.io/kubernetes, far too large to import for five fields).
type admissionConfiguration struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Plugins    []admissionPlugin `json:"plugins"`
}

type admissionPlugin struct {
	Name          string `json:"name"`
	Configuration struct {
		ImagePolicy imagePolicyWebhook `json:"imagePolicy"`
	} `json:"configuration"`
}

type imagePolicyWebhook struct {
	KubeConfigFile string `json:"kubeConfigFile"`
	AllowTTL       int    `json:"allowTTL"`
	DenyTTL        int    `json:"denyTTL"`
	RetryBackoff   int    `json:"retryBackoff"`
	DefaultAllow   bool   `json:"defaultAllow"`
}

// BuildImagePolicy returns the AdmissionConfiguration (defaultAllow:
// false: when customs cannot answer, images are refused) and kubeconfig
// for the ImagePolicyWebhook plugin.
func BuildImagePolicy(o ImagePolicyOptions) (*ImagePolicy, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, apperr.Errorf(apperr.EINVALID, "--url %q: ImagePolicyWebhook needs https://HOST[:PORT] as the API server reaches customs", o.URL)
	}
	if err := checkCA(o.CAPEM); err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "--ca: %v", err)
	}
	if !filepath.IsAbs(o.KubeconfigPath) {
		return nil, apperr.Errorf(apperr.EINVALID, "the ImagePolicyWebhook kubeconfig path %q must be absolute (the API server reads it)", o.KubeconfigPath)
	}
	var ac admissionConfiguration
	ac.APIVersion, ac.Kind = "apiserver.config.k8s.io/v1", "AdmissionConfiguration"
	p := admissionPlugin{Name: "ImagePolicyWebhook"}
	p.Configuration.ImagePolicy = imagePolicyWebhook{
		KubeConfigFile: o.KubeconfigPath,
		AllowTTL:       o.AllowTTL,
		DenyTTL:        o.DenyTTL,
		RetryBackoff:   o.RetryBackoff,
		DefaultAllow:   false,
	}
	ac.Plugins = []admissionPlugin{p}
	acYAML, err := yaml.Marshal(ac)
	if err != nil {
		return nil, err
	}
	kc := clientcmdv1.Config{
		APIVersion: "v1",
		Kind:       "Config",
		Clusters: []clientcmdv1.NamedCluster{{Name: "customs", Cluster: clientcmdv1.Cluster{
			Server:                   strings.TrimSuffix(o.URL, "/") + ImageReviewPath,
			CertificateAuthorityData: o.CAPEM,
		}}},
		// The plugin requires a user entry; customs' listener does not
		// authenticate the API server (it answers decisions only).
		AuthInfos:      []clientcmdv1.NamedAuthInfo{{Name: "kube-apiserver", AuthInfo: clientcmdv1.AuthInfo{}}},
		Contexts:       []clientcmdv1.NamedContext{{Name: "customs", Context: clientcmdv1.Context{Cluster: "customs", AuthInfo: "kube-apiserver"}}},
		CurrentContext: "customs",
	}
	kcYAML, err := cleanYAML(kc)
	if err != nil {
		return nil, err
	}
	return &ImagePolicy{AdmissionConfig: acYAML, Kubeconfig: kcYAML}, nil
}
