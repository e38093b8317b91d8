package server

import (
	"context"
	"errors"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/customs-dev/customs/internal/admission"
	"github.com/customs-dev/customs/internal/kube"
	"github.com/customs-dev/customs/internal/kubeaudit"
	"github.com/customs-dev/customs/internal/workloadaudit"
)

// startWorkloadAudit starts the audit of running workloads (package
// workloadaudit) on wg until ctx ends, deciding with the admission webhook
// wh, when admission.workloadAudit.interval is not 0 and cluster
// credentials exist (admission.kubeconfig, or the pod's service account).
func (s *Server) startWorkloadAudit(ctx context.Context, wg *sync.WaitGroup, wh *admission.Webhook) error {
	a := s.cfg.Admission
	if a.WorkloadAudit.Interval == 0 {
		return nil
	}
	logger := s.logger.With("component", "workloadaudit")
	client, err := kube.Connect(a.Kubeconfig, 0)
	switch {
	case errors.Is(err, kube.ErrNoCluster):
		logger.Info("workload audit: no cluster credentials; running workloads are not audited")
		return nil
	case err != nil:
		return err
	}
	job, err := workloadaudit.New(workloadaudit.Options{
		Pods:      func(ctx context.Context) ([]corev1.Pod, error) { return kubeaudit.Pods(ctx, client, "") },
		Decider:   wh,
		Store:     s.Store,
		Revisions: s.Store,
		Recorder:  s.Audit,
		Interval:  a.WorkloadAudit.Interval.Std(),
		Debounce:  a.WorkloadAudit.Debounce.Std(),
		Logger:    logger, Registerer: s.metrics,
	})
	if err != nil {
		return err
	}
	logger.Info("workload audit: configured", "interval", a.WorkloadAudit.Interval, "debounce", a.WorkloadAudit.Debounce)
	wg.Add(1)
	go func() { defer wg.Done(); job.Loop(ctx) }()
	return nil
}
