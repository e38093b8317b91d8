package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/kubeaudit"
)

func newAuditWorkloadsCmd() *cobra.Command {
	var kubeconfig, kubeContext, namespace, format, admissionURL, admissionCA string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "workloads (--admission-url URL [--kubeconfig F] | --server URL) [--namespace N] [--format table|json]",
		Short: "Report the running pods whose images the current policy would refuse",
		Long: `Lists the pods that are not finished (Pending, Running, Unknown) in one
namespace or all, and asks customs' admission listener — as a dry-run
AdmissionReview of each image in its namespace — what it would answer today.
Every container whose image would be refused (or warned about) is listed
with customs' reason. Exits 1 when an image would be refused, 0 otherwise,
2 on an error.

Credentials come from --kubeconfig, else $KUBECONFIG, else ~/.kube/config;
they need get/list on pods (the ClusterRole "customs admission manifests"
prints has it).

With --server (and no --admission-url) it needs no cluster credentials: it
prints the last result of the audit customs serve runs itself when it has
cluster credentials (every admission.workloadAudit.interval, and seconds
after a policy or vulnerability database change), read from
GET /api/v1/workloads/refused as a system administrator.`,
		Example: `  customs audit workloads --admission-url https://customs.corp.example:8443 --admission-ca ca.crt
  customs audit workloads --admission-url https://127.0.0.1:8443 --admission-ca /var/lib/customs/admission-tls/ca.crt -n production --format json
  customs audit workloads --server https://customs.corp.example -u admin`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&kubeContext, "context", "", "kubeconfig context (default: the current one)")
	fs.StringVarP(&namespace, "namespace", "n", "", "only this namespace (default: all)")
	fs.StringVar(&format, "format", "table", "table or json")
	fs.StringVar(&admissionURL, "admission-url", os.Getenv("CUSTOMS_ADMISSION_URL"), "customs' admission listener, https://HOST:PORT (env CUSTOMS_ADMISSION_URL)")
	fs.StringVar(&admissionCA, "admission-ca", os.Getenv("CUSTOMS_ADMISSION_CA"), "CA certificate (PEM) that verifies the admission listener (env CUSTOMS_ADMISSION_CA; default: the system's)")
	fs.DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	cf := bindClientFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		fail := func(err error) error { return &exitError{code: 2, err: err} }
		if format != "table" && format != "json" {
			return fail(apperr.Errorf(apperr.EINVALID, "--format %q: want table or json", format))
		}
		if cmd.Flags().Changed("server") {
			if cmd.Flags().Changed("admission-url") || cmd.Flags().Changed("kubeconfig") {
				return fail(apperr.Errorf(apperr.EINVALID, "--server reads the server's own audit; it takes neither --admission-url nor --kubeconfig"))
			}
			return serverWorkloadAudit(cmd, cf, namespace, format, timeout)
		}
		if !strings.HasPrefix(admissionURL, "https://") {
			return fail(apperr.Errorf(apperr.EINVALID, "--admission-url %q: want https://HOST:PORT, customs' admission listener (admission.addr)", admissionURL))
		}
		tlsConfig := &tls.Config{}
		if admissionCA != "" {
			pem, err := os.ReadFile(admissionCA)
			if err != nil {
				return fail(apperr.Errorf(apperr.EINVALID, "--admission-ca: %v", err))
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fail(apperr.Errorf(apperr.EINVALID, "--admission-ca %s: no PEM certificate", admissionCA))
			}
			tlsConfig.RootCAs = pool
		}
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = kubeconfig
		restConfig, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
			&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
		if err != nil {
			return fail(apperr.Errorf(apperr.EINVALID, "kubeconfig: %v", err))
		}
		restConfig.UserAgent = "customs-audit/" + version
		client, err := kubernetes.NewForConfig(restConfig)
		if err != nil {
			return fail(apperr.Errorf(apperr.EINVALID, "kubeconfig: %v", err))
		}
		ctx := cmd.Context()
		if timeout > 0 {
			var cancel func()
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		pods, err := kubeaudit.Pods(ctx, client, namespace)
		if err != nil {
			return fail(err)
		}
		httpClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
		defer httpClient.CloseIdleConnections()
		rep, err := kubeaudit.Audit(ctx, pods, &kubeaudit.WebhookReviewer{URL: admissionURL, Client: httpClient})
		if err != nil {
			return fail(err)
		}
		out := cmd.OutOrStdout()
		if format == "json" {
			if err := writeJSON(out, rep); err != nil {
				return fail(err)
			}
		} else {
			if len(rep.Refused)+len(rep.Warned) > 0 {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAMESPACE\tPOD\tCONTAINER\tIMAGE\tOUTCOME\tREASON")
				for _, f := range append(append([]kubeaudit.Finding(nil), rep.Refused...), rep.Warned...) {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Namespace, f.Pod, f.Container.Container, f.Image, f.Outcome,
						strings.Join(strings.Fields(f.Message), " "))
				}
				if err := tw.Flush(); err != nil {
					return fail(err)
				}
			}
			fmt.Fprintf(out, "%d pods, %d containers, %d images checked: %d containers refused, %d warned\n",
				rep.Pods, rep.Containers, rep.Images, len(rep.Refused), len(rep.Warned))
		}
		if len(rep.Refused) > 0 {
			return &exitError{code: 1}
		}
		return nil
	}
	return cmd
}

// serverWorkloadAudit prints the server's last audit of running workloads
// (only namespace's containers when it is not ""); exit 1 when a container
// is refused.
func serverWorkloadAudit(cmd *cobra.Command, cf *clientFlags, namespace, format string, timeout time.Duration) error {
	fail := func(err error) error { return &exitError{code: 2, err: err} }
	c, err := cf.client()
	if err != nil {
		return fail(err)
	}
	ctx := cmd.Context()
	if timeout > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	a, err := c.RefusedWorkloads(ctx)
	if err != nil {
		return fail(err)
	}
	if namespace != "" {
		keep := func(l []api.WorkloadContainer) []api.WorkloadContainer {
			out := []api.WorkloadContainer{}
			for _, w := range l {
				if w.Namespace == namespace {
					out = append(out, w)
				}
			}
			return out
		}
		a.Refused, a.Warned = keep(a.Refused), keep(a.Warned)
	}
	out := cmd.OutOrStdout()
	if format == "json" {
		if err := writeJSON(out, a); err != nil {
			return fail(err)
		}
	} else {
		if len(a.Refused)+len(a.Warned) > 0 {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAMESPACE\tPOD\tCONTAINER\tIMAGE\tDIGEST\tOUTCOME\tREASON")
			for _, l := range []struct {
				outcome string
				list    []api.WorkloadContainer
			}{{"refused", a.Refused}, {"warned", a.Warned}} {
				for _, w := range l.list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.Namespace, w.Pod, w.Container, w.Image, w.Digest, l.outcome,
						strings.Join(strings.Fields(w.Reason), " "))
				}
			}
			if err := tw.Flush(); err != nil {
				return fail(err)
			}
		}
		fmt.Fprintf(out, "audit of %s (trigger %s, policy revision %d, vulnerability revision %d): %d pods, %d containers, %d images checked: %d containers refused, %d warned\n",
			a.Finished, a.Trigger, a.PolicyRevision, a.VulnRevision, a.Pods, a.Containers, a.Images, len(a.Refused), len(a.Warned))
	}
	if len(a.Refused) > 0 {
		return &exitError{code: 1}
	}
	return nil
}
