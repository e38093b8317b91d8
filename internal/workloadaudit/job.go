// Package workloadaudit is `customs serve`'s periodic audit of the
// workloads running in the cluster (seed 003's live scan): it lists the
// pods that run, decides every image in them as the validating webhook
// would today (admission.Webhook.DecidePod), and stores which containers
// the current policy refuses or warns about, so that every replica serves
// the result and a restart keeps it. It runs every Interval and, debounced,
// soon after the policy revision changes or the scan reports are matched
// against a new vulnerability database revision — after a policy change,
// after a new CVE. A lease in the store
// lets one replica at a time run it. A container newly refused is an audit
// event; a gauge counts the refused containers.
package workloadaudit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/customs-dev/customs/internal/admission"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/store"
)

// Triggers: why an audit ran.
const (
	TriggerStart    = "start"    // the first run after customs started
	TriggerInterval = "interval" // the last stored run is older than Interval
	TriggerPolicy   = "policy"   // the global policy revision changed
	TriggerVulndb   = "vulndb"   // the scan reports were matched against a new vulnerability database revision
	TriggerManual   = "manual"   // Run was called directly
)

// Outcomes of a finding.
const (
	Refused = "refused"
	Warned  = "warned"
)

// PodLister lists the pods that run or are about to (kubeaudit.Pods over a
// clientset).
type PodLister func(ctx context.Context) ([]corev1.Pod, error)

// PodDecider decides a pod's images as admission does (*admission.Webhook).
type PodDecider interface {
	DecidePod(ctx context.Context, timeout time.Duration, pod *corev1.Pod) (*admission.PodDecision, error)
}

// Revisions reads the global policy revision and the vulnerability
// database revision up to which the stored scan reports were matched again
// (the store). The latter, not the database's own revision, triggers the
// audit: a new advisory changes a decision once the reports it touches are
// re-matched, which the scanner does after the import.
type Revisions interface {
	PolicyRevision(ctx context.Context) (int64, error)
	RematchedRevision(ctx context.Context) (int64, error)
}

// Defaults of Options.
const (
	DefaultInterval = time.Hour
	DefaultDebounce = 2 * time.Second
	DefaultPoll     = time.Second
	DefaultLease    = 2 * time.Minute
	DefaultTimeout  = 10 * time.Second
)

// Options configures a Job. Pods, Decider, Store and Revisions are
// required.
type Options struct {
	Pods      PodLister
	Decider   PodDecider
	Store     store.WorkloadAuditStore
	Revisions Revisions
	// Recorder receives an audit event for each newly refused container;
	// nil means audit.Discard.
	Recorder audit.Recorder
	// Interval is how old the stored result may grow before a replica
	// runs the audit again (DefaultInterval when 0).
	Interval time.Duration
	// Debounce is how long after a revision change the audit waits for
	// further changes (a policy applied in several steps, an import's
	// overrides) before it runs; DefaultDebounce when 0.
	Debounce time.Duration
	// Poll is how often the revisions are read (two one-row queries);
	// DefaultPoll when 0.
	Poll time.Duration
	// Lease is how long a run holds the store's lease (DefaultLease when
	// 0); a run longer than Lease may have its result refused.
	Lease time.Duration
	// Timeout bounds the decision of one pod's images (DefaultTimeout
	// when 0).
	Timeout time.Duration
	// Owner names this process in the lease; "" means host-pid-random.
	Owner      string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Job runs the audit. Its methods are safe for concurrent use.
type Job struct {
	opts    Options
	refused prometheus.Gauge
	warned  prometheus.Gauge
	runs    *prometheus.CounterVec
	mu      sync.Mutex // one run at a time in this process
}

// New checks opts and returns a Job.
func New(opts Options) (*Job, error) {
	if opts.Pods == nil || opts.Decider == nil || opts.Store == nil || opts.Revisions == nil {
		return nil, errors.New("workloadaudit: Pods, Decider, Store and Revisions are required")
	}
	if opts.Recorder == nil {
		opts.Recorder = audit.Discard{}
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		opts.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	j := &Job{opts: opts,
		refused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "customs_workload_audit_refused_containers",
			Help: "Running containers whose image the current policy refuses, as the last workload audit found."}),
		warned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "customs_workload_audit_warned_containers",
			Help: "Running containers whose image the current policy warns about, as the last workload audit found."}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "customs_workload_audit_runs_total",
			Help: "Workload audits this process ran, by trigger and result (ok, error)."}, []string{"trigger", "result"}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{j.refused, j.warned, j.runs} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("workloadaudit: registering metrics: %w", err)
			}
		}
	}
	return j, nil
}

// Run runs one audit now if no other process holds the lease: lists the
// pods, decides them, stores the result and records an audit event for
// each container refused now that the previous result did not list as
// refused. It returns the stored result, or nil (and no error) when
// another process holds the lease.
func (j *Job) Run(ctx context.Context, trigger string) (*store.WorkloadAudit, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.opts.Store
	claimed, err := st.ClaimWorkloadAudit(ctx, j.opts.Owner, j.opts.Lease)
	if err != nil || !claimed {
		return nil, err
	}
	defer func() {
		if err := st.ReleaseWorkloadAudit(context.WithoutCancel(ctx), j.opts.Owner); err != nil {
			j.opts.Logger.Warn("workload audit: releasing the lease failed; it expires by itself", "err", err)
		}
	}()
	a, err := j.audit(ctx, trigger)
	if err != nil {
		j.runs.WithLabelValues(trigger, "error").Inc()
		return nil, err
	}
	prev, err := st.LastWorkloadAudit(ctx)
	if err != nil && apperr.Code(err) != apperr.ENOTFOUND {
		return nil, err
	}
	if err := st.PutWorkloadAudit(ctx, a); err != nil {
		j.runs.WithLabelValues(trigger, "error").Inc()
		return nil, err
	}
	j.runs.WithLabelValues(trigger, "ok").Inc()
	j.observe(a)
	j.recordNew(ctx, prev, a)
	return a, nil
}

// audit lists and decides.
func (j *Job) audit(ctx context.Context, trigger string) (*store.WorkloadAudit, error) {
	a := &store.WorkloadAudit{Owner: j.opts.Owner, Trigger: trigger, Started: j.opts.Now(), Findings: []store.WorkloadFinding{}}
	var err error
	if a.PolicyRevision, err = j.opts.Revisions.PolicyRevision(ctx); err != nil {
		return nil, err
	}
	if a.VulnRevision, err = j.opts.Revisions.RematchedRevision(ctx); err != nil {
		return nil, err
	}
	pods, err := j.opts.Pods(ctx)
	if err != nil {
		return nil, err
	}
	a.Pods = len(pods)
	type key struct{ ns, image string }
	images := map[key]bool{}
	for i := range pods {
		p := &pods[i]
		pd, err := j.opts.Decider.DecidePod(ctx, j.opts.Timeout, p)
		if err != nil {
			// A pod whose spec does not read is refused at admission
			// (failing closed); so here.
			a.Findings = append(a.Findings, store.WorkloadFinding{Namespace: p.Namespace, Pod: p.Name, Outcome: Refused,
				Reason: fmt.Sprintf("Forbidden: customs could not read the pod's images: %v", err)})
			continue
		}
		for k := range pd.Images {
			d := &pd.Images[k]
			a.Containers++
			images[key{p.Namespace, d.Use.Image}] = true
			f := store.WorkloadFinding{Namespace: p.Namespace, Pod: p.Name, Container: d.Use.Name, Kind: kindOf(d.Use.Role),
				Image: d.Use.Image, Digest: d.Resolution.Digest}
			switch {
			case d.Denied():
				f.Outcome = Refused
			case d.Decision.Outcome == policy.Warned:
				f.Outcome = Warned
			default:
				continue
			}
			f.Reason = d.Reason()
			a.Findings = append(a.Findings, f)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	a.Images = len(images)
	sort.SliceStable(a.Findings, func(x, y int) bool {
		p, q := &a.Findings[x], &a.Findings[y]
		if p.Namespace != q.Namespace {
			return p.Namespace < q.Namespace
		}
		if p.Pod != q.Pod {
			return p.Pod < q.Pod
		}
		return p.Container < q.Container
	})
	a.Finished = j.opts.Now()
	return a, nil
}

// kindOf names admission's role as kubeaudit's container kinds.
func kindOf(role string) string {
	switch role {
	case "init container":
		return "initContainer"
	case "ephemeral container":
		return "ephemeralContainer"
	case "image volume":
		return "imageVolume"
	}
	return "container"
}

// observe sets the gauges from a.
func (j *Job) observe(a *store.WorkloadAudit) {
	var r, w int
	for _, f := range a.Findings {
		if f.Outcome == Refused {
			r++
		} else {
			w++
		}
	}
	j.refused.Set(float64(r))
	j.warned.Set(float64(w))
}

// findingKey identifies a container running an image.
func findingKey(f *store.WorkloadFinding) string {
	return f.Namespace + "/" + f.Pod + "/" + f.Container + "/" + f.Image
}

// recordNew records "workload.refused" for every container refused in a
// and not in prev.
func (j *Job) recordNew(ctx context.Context, prev, a *store.WorkloadAudit) {
	before := map[string]bool{}
	if prev != nil {
		for i := range prev.Findings {
			if prev.Findings[i].Outcome == Refused {
				before[findingKey(&prev.Findings[i])] = true
			}
		}
	}
	for i := range a.Findings {
		f := &a.Findings[i]
		if f.Outcome != Refused || before[findingKey(f)] {
			continue
		}
		details := map[string]string{"namespace": f.Namespace, "pod": f.Pod, "container": f.Container, "image": f.Image,
			"trigger": a.Trigger, "policyRevision": fmt.Sprint(a.PolicyRevision), "vulnRevision": fmt.Sprint(a.VulnRevision)}
		if f.Digest != "" {
			details["digest"] = f.Digest
		}
		j.opts.Recorder.Record(ctx, audit.Event{Time: a.Finished.UTC(), ActorKind: "system", Actor: "customs",
			Action: "workload.refused", Resource: "pod:" + f.Namespace + "/" + f.Pod, Outcome: audit.Denied,
			Reason: f.Reason, Details: details})
	}
}

// Loop runs the audit until ctx ends: soon after start, whenever the
// stored result is older than Interval, and Debounce after the policy or
// vulnerability revision last changed (checked every Poll). A trigger this
// process could not run because another held the lease stays pending
// until a stored result started after it, and the lease is asked again
// after Debounce. After a failed run the next try waits min(Interval, 30s).
func (j *Job) Loop(ctx context.Context) {
	log := j.opts.Logger
	var seenPolicy, seenVuln int64 = -1, -1
	pending := TriggerStart
	since := j.opts.Now()      // when the pending trigger arose
	var lastFinished time.Time // of the stored result, as last read
	var retryAt time.Time
	t := time.NewTicker(j.opts.Poll)
	defer t.Stop()
	for {
		now := j.opts.Now()
		pol, vul, err := j.revisions(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("workload audit: reading the revisions failed", "err", err)
			}
		case seenPolicy < 0:
			seenPolicy, seenVuln = pol, vul
		case pol != seenPolicy || vul != seenVuln:
			if pol != seenPolicy {
				pending = TriggerPolicy
			} else if pending != TriggerPolicy {
				pending = TriggerVulndb
			}
			seenPolicy, seenVuln = pol, vul
			since = now
			retryAt = time.Time{}
		}
		if pending != "" || now.Sub(lastFinished) >= j.opts.Interval {
			last, err := j.opts.Store.LastWorkloadAudit(ctx)
			switch {
			case err == nil:
				lastFinished = last.Finished
				if pending != "" && !last.Started.Before(since) {
					pending = "" // run (here or by another replica) after the trigger
				}
			case apperr.Code(err) == apperr.ENOTFOUND:
			case ctx.Err() == nil:
				log.Warn("workload audit: reading the last result failed", "err", err)
			}
			if pending == "" && now.Sub(lastFinished) >= j.opts.Interval {
				pending, since = TriggerInterval, now
			}
		}
		debounced := pending == TriggerStart || pending == TriggerInterval || now.Sub(since) >= j.opts.Debounce
		if pending != "" && debounced && !now.Before(retryAt) {
			a, err := j.Run(ctx, pending)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					log.Error("workload audit failed", "trigger", pending, "err", err)
				}
				retryAt = j.opts.Now().Add(min(j.opts.Interval, 30*time.Second))
			case a != nil:
				log.Info("workload audit", "trigger", a.Trigger, "pods", a.Pods, "containers", a.Containers,
					"findings", len(a.Findings), "policyRevision", a.PolicyRevision, "vulnRevision", a.VulnRevision,
					"took", a.Finished.Sub(a.Started).Round(time.Millisecond))
				pending, lastFinished = "", a.Finished
			default:
				// Another replica holds the lease: the trigger stays
				// pending until a stored result started after it; the
				// lease is asked again after Debounce, not every Poll.
				retryAt = j.opts.Now().Add(j.opts.Debounce)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// revisions reads both revisions.
func (j *Job) revisions(ctx context.Context) (int64, int64, error) {
	pol, err := j.opts.Revisions.PolicyRevision(ctx)
	if err != nil {
		return 0, 0, err
	}
	vul, err := j.opts.Revisions.RematchedRevision(ctx)
	if err != nil {
		return 0, 0, err
	}
	return pol, vul, nil
}
