package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/kubeinstall"
)

func newAdmissionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admission",
		Short: "Install customs' Kubernetes admission webhooks",
	}
	cmd.AddCommand(newAdmissionManifestsCmd())
	return cmd
}

// defaultImage is customs' own container image for this build.
func defaultImage() string {
	tag := version
	if tag == "" || tag == "dev" {
		tag = "latest"
	}
	return "ghcr.io/customs-dev/customs:" + tag
}

func newAdmissionManifestsCmd() *cobra.Command {
	o := kubeinstall.DefaultOptions(defaultImage())
	var caFile, certFile, keyFile, imagePolicyDir, imagePolicyKubeconfigPath string
	var timeout int
	cmd := &cobra.Command{
		Use:   "manifests",
		Short: "Print the Kubernetes objects that install customs' admission webhooks",
		Long: `Prints, as one YAML stream for "kubectl apply -f -": the namespace, service
account, RBAC (read namespaces and pods), TLS Secret, Service and Deployment
of customs, and the validating and mutating webhook configurations
(failurePolicy Fail, sideEffects None, caBundle, a namespaceSelector that
exempts kube-system and customs' namespace by their kubernetes.io/metadata.name
label) for pods, pods/ephemeralcontainers and every workload kind.

Without --ca/--cert/--key a CA and a certificate for the Service are
generated (and printed in the Secret). With --url, customs runs outside the
cluster: the webhooks call that URL, trusting --ca, and no Deployment,
Service or Secret is printed.

--imagepolicy DIR writes the API server's files for the ImagePolicyWebhook
admission plugin (defaultAllow: false) into DIR: admission-config.yaml for
--admission-control-config-file, and the kubeconfig it names.`,
		Example: `  customs admission manifests | kubectl apply -f -
  customs admission manifests --image registry.corp.example/customs:1.4 --ca ca.crt --cert tls.crt --key tls.key
  customs admission manifests --url https://customs.corp.example:8443 --ca /var/lib/customs/admission-tls/ca.crt
  customs admission manifests --url https://10.0.0.5:8443 --ca ca.crt --imagepolicy /etc/kubernetes/customs`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace customs runs in (always exempt)")
	fs.StringVar(&o.Name, "name", o.Name, "name of the webhook configurations, ClusterRole and Deployment")
	fs.StringVar(&o.ServiceName, "service-name", o.ServiceName, "Service the webhooks call")
	fs.StringVar(&o.Image, "image", o.Image, "customs' container image")
	fs.StringVar(&o.ConfigSecret, "config-secret", "", "Secret whose key config.yaml is customs' configuration (e.g. a PostgreSQL DSN), mounted into the Deployment")
	fs.Int32Var(&o.Replicas, "replicas", o.Replicas, "replicas of the Deployment (more than 1 needs --config-secret with PostgreSQL)")
	fs.StringVar(&o.URL, "url", "", "customs' admission listener outside the cluster (https://HOST[:PORT]); needs --ca")
	fs.StringVar(&caFile, "ca", "", "CA certificate (PEM) that verifies the webhook listener: the caBundle")
	fs.StringVar(&certFile, "cert", "", "webhook serving certificate (PEM), signed by --ca")
	fs.StringVar(&keyFile, "key", "", "key of --cert (PEM)")
	fs.StringSliceVar(&o.ExemptNamespaces, "exempt-namespace", o.ExemptNamespaces, "namespaces never sent to the webhooks (customs' own is added)")
	fs.StringToStringVar(&o.NamespaceLabels, "namespace-label", nil, "only namespaces with these labels are sent to the webhooks (key=value,...)")
	fs.IntVar(&timeout, "timeout", int(o.TimeoutSeconds), "webhook timeout in seconds (1-30)")
	fs.StringVar(&imagePolicyDir, "imagepolicy", "", "also write the ImagePolicyWebhook AdmissionConfiguration and kubeconfig into this directory")
	fs.StringVar(&imagePolicyKubeconfigPath, "imagepolicy-kubeconfig-path", "",
		"where the ImagePolicyWebhook kubeconfig will be on the API server's host (default: in --imagepolicy's directory)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o.TimeoutSeconds = int32(timeout)
		if int(o.TimeoutSeconds) != timeout {
			return apperr.Errorf(apperr.EINVALID, "--timeout %d: the API server allows 1 to 30 seconds", timeout)
		}
		for _, f := range []struct {
			path string
			dst  *[]byte
			flag string
		}{{caFile, &o.CAPEM, "ca"}, {certFile, &o.CertPEM, "cert"}, {keyFile, &o.KeyPEM, "key"}} {
			if f.path == "" {
				continue
			}
			b, err := os.ReadFile(f.path)
			if err != nil {
				return apperr.Errorf(apperr.EINVALID, "--%s: %v", f.flag, err)
			}
			*f.dst = b
		}
		m, err := kubeinstall.Build(o)
		if err != nil {
			return err
		}
		out, err := m.YAML()
		if err != nil {
			return err
		}
		if imagePolicyDir != "" {
			if err := writeImagePolicy(cmd, o, m.CAPEM, imagePolicyDir, imagePolicyKubeconfigPath); err != nil {
				return err
			}
		}
		_, err = cmd.OutOrStdout().Write(out)
		return err
	}
	return cmd
}

// writeImagePolicy writes admission-config.yaml and imagepolicy.kubeconfig
// into dir.
func writeImagePolicy(cmd *cobra.Command, o kubeinstall.Options, caPEM []byte, dir, kubeconfigPath string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return apperr.Errorf(apperr.EINVALID, "--imagepolicy %q: %v", dir, err)
	}
	if kubeconfigPath == "" {
		kubeconfigPath = filepath.Join(abs, "imagepolicy.kubeconfig")
	}
	url := o.URL
	if url == "" {
		url = fmt.Sprintf("https://%s.%s.svc", o.ServiceName, o.Namespace)
		fmt.Fprintf(cmd.ErrOrStderr(), "customs: the ImagePolicyWebhook kubeconfig calls %s: the API server must resolve the Service's name (or use --url)\n", url)
	}
	ip, err := kubeinstall.BuildImagePolicy(kubeinstall.ImagePolicyOptions{
		URL: url, CAPEM: caPEM, KubeconfigPath: kubeconfigPath, AllowTTL: 50, DenyTTL: 50, RetryBackoff: 500,
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return apperr.Errorf(apperr.EINVALID, "--imagepolicy: %v", err)
	}
	for name, b := range map[string][]byte{"admission-config.yaml": ip.AdmissionConfig, "imagepolicy.kubeconfig": ip.Kubeconfig} {
		if err := os.WriteFile(filepath.Join(abs, name), b, 0o644); err != nil {
			return apperr.Errorf(apperr.EINVALID, "--imagepolicy: %v", err)
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "customs: wrote %s and %s; start kube-apiserver with --enable-admission-plugins=...,ImagePolicyWebhook --admission-control-config-file=%s\n",
		filepath.Join(abs, "admission-config.yaml"), kubeconfigPath, filepath.Join(abs, "admission-config.yaml"))
	return nil
}
