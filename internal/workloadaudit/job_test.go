package workloadaudit

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/customs-dev/customs/internal/admission"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "customs.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// verdicts decides each image by a table the test changes, and counts the
// pods it was asked about.
type verdicts struct {
	mu    sync.Mutex
	deny  map[string]string // image -> reason
	warn  map[string]string
	calls int
}

func (v *verdicts) set(deny map[string]string) {
	v.mu.Lock()
	v.deny = deny
	v.mu.Unlock()
}

func (v *verdicts) DecidePod(ctx context.Context, timeout time.Duration, pod *corev1.Pod) (*admission.PodDecision, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls++
	if pod.Namespace == "kube-system" {
		return &admission.PodDecision{ExemptBy: "kube-system"}, nil
	}
	out := &admission.PodDecision{}
	for _, c := range pod.Spec.Containers {
		d := admission.ImageDecision{Use: admission.ImageUse{Role: "container", Name: c.Name, Image: c.Image},
			Resolution: admission.Resolution{Digest: "sha256:" + strings.Repeat("a", 64)}}
		switch {
		case v.deny[c.Image] != "":
			d.Decision = &policy.Decision{Outcome: policy.Denied, Default: true, Violations: []policy.Violation{{Message: v.deny[c.Image]}}}
		case v.warn[c.Image] != "":
			d.Decision = &policy.Decision{Outcome: policy.Warned, Default: true, Violations: []policy.Violation{{Message: v.warn[c.Image]}}}
		default:
			d.Decision = &policy.Decision{Outcome: policy.Allowed}
		}
		out.Images = append(out.Images, d)
	}
	return out, nil
}

func pod(ns, name string, images ...string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for i, im := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Image: im})
	}
	return p
}

type fixture struct {
	st   store.Store
	v    *verdicts
	rec  *audit.Memory
	reg  *prometheus.Registry
	job  *Job
	pods []corev1.Pod
}

func newFixture(t *testing.T, opts Options) *fixture {
	f := &fixture{st: openStore(t), v: &verdicts{warn: map[string]string{"w:1": "the latest tag is discouraged"}},
		rec: &audit.Memory{}, reg: prometheus.NewRegistry()}
	f.pods = []corev1.Pod{pod("prod", "web", "good:1", "bad:1"), pod("prod", "api", "bad:1"), pod("dev", "x", "w:1"),
		pod("kube-system", "dns", "bad:1")}
	opts.Pods = func(context.Context) ([]corev1.Pod, error) { return f.pods, nil }
	opts.Decider, opts.Store, opts.Revisions, opts.Recorder, opts.Registerer = f.v, f.st, f.st, f.rec, f.reg
	if opts.Owner == "" {
		opts.Owner = "test"
	}
	j, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.job = j
	return f
}

func refusedEvents(m *audit.Memory) []audit.Event {
	return m.Events(func(e audit.Event) bool { return e.Action == "workload.refused" })
}

// TestRun: a run stores every refused and warned container (exempt
// namespaces left out), in order, with digest and reason; the gauge
// counts them; only containers newly refused become audit events; another
// owner's lease makes Run do nothing.
func TestRun(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	f.v.set(map[string]string{"bad:1": "bad is vulnerable"})
	a, err := f.job.Run(ctx, TriggerManual)
	if err != nil || a == nil {
		t.Fatalf("Run = %v, %v", a, err)
	}
	var got []string
	for _, x := range a.Findings {
		got = append(got, x.Namespace+"/"+x.Pod+"/"+x.Container+" "+x.Image+" "+x.Outcome+": "+x.Reason)
		if x.Digest == "" || x.Kind != "container" {
			t.Errorf("finding %+v lacks digest or kind", x)
		}
	}
	want := []string{
		"dev/x/a w:1 warned: the latest tag is discouraged",
		"prod/api/a bad:1 refused: Forbidden: no matching image policy: bad is vulnerable",
		"prod/web/b bad:1 refused: Forbidden: no matching image policy: bad is vulnerable",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if a.Pods != 4 || a.Containers != 4 || a.Images != 3 || a.Trigger != TriggerManual {
		t.Errorf("counts %d pods %d containers %d images trigger %s", a.Pods, a.Containers, a.Images, a.Trigger)
	}
	stored, err := f.st.LastWorkloadAudit(ctx)
	if err != nil || len(stored.Findings) != 3 {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if n := metric(t, f.reg, "customs_workload_audit_refused_containers", ""); n != 2 {
		t.Errorf("refused gauge %v, want 2", n)
	}
	if n := metric(t, f.reg, "customs_workload_audit_warned_containers", ""); n != 1 {
		t.Errorf("warned gauge %v, want 1", n)
	}
	ev := refusedEvents(f.rec)
	if len(ev) != 2 || ev[0].Details["image"] != "bad:1" || ev[0].Outcome != audit.Denied || ev[0].ActorKind != "system" {
		t.Fatalf("events %+v", ev)
	}

	// The same refusals again: no new event. A new pod refused: one.
	f.pods = append(f.pods, pod("prod", "new", "bad:1"))
	f.rec.Take()
	if _, err := f.job.Run(ctx, TriggerManual); err != nil {
		t.Fatal(err)
	}
	if ev := refusedEvents(f.rec); len(ev) != 1 || ev[0].Resource != "pod:prod/new" {
		t.Fatalf("events after a second run %+v, want one for prod/new", ev)
	}
	if n := metric(t, f.reg, "customs_workload_audit_refused_containers", ""); n != 3 {
		t.Errorf("refused gauge %v, want 3", n)
	}

	// Another process holds the lease: nothing runs.
	if _, err := f.st.ClaimWorkloadAudit(ctx, "other", time.Minute); err != nil {
		t.Fatal(err)
	}
	before := f.v.calls
	if a, err := f.job.Run(ctx, TriggerManual); a != nil || err != nil || f.v.calls != before {
		t.Fatalf("Run under another's lease = %v, %v, %d decisions", a, err, f.v.calls-before)
	}
}

// TestRunFails: a failed listing stores nothing and keeps the previous
// result.
func TestRunFails(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	if _, err := f.job.Run(ctx, TriggerManual); err != nil {
		t.Fatal(err)
	}
	f.job.opts.Pods = func(context.Context) ([]corev1.Pod, error) { return nil, errors.New("the API server is down") }
	if _, err := f.job.Run(ctx, TriggerInterval); err == nil || !strings.Contains(err.Error(), "down") {
		t.Fatalf("Run = %v, want the listing's error", err)
	}
	if a, err := f.st.LastWorkloadAudit(ctx); err != nil || a.Trigger != TriggerManual {
		t.Fatalf("stored after a failure: %+v, %v", a, err)
	}
	if n := metric(t, f.reg, "customs_workload_audit_runs_total", "error,"+TriggerInterval); n != 1 {
		t.Errorf("error runs %v", n)
	}
}

// waitAudit waits for a stored result satisfying ok.
func waitAudit(t *testing.T, st store.Store, within time.Duration, ok func(*store.WorkloadAudit) bool) *store.WorkloadAudit {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		a, err := st.LastWorkloadAudit(context.Background())
		if err == nil && ok(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching stored audit within %s (last %+v, %v)", within, a, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLoopTriggers: the loop runs at start; a policy change runs it again
// after the debounce (two changes inside the debounce: one run) without
// waiting for the interval; the scan reports matched against a new
// vulnerability database revision likewise.
func TestLoopTriggers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFixture(t, Options{Interval: time.Hour, Debounce: 300 * time.Millisecond, Poll: 20 * time.Millisecond})
	done := make(chan struct{})
	go func() { f.job.Loop(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	first := waitAudit(t, f.st, 5*time.Second, func(a *store.WorkloadAudit) bool { return true })
	if first.Trigger != TriggerStart || len(first.Findings) != 1 { // the warning only
		t.Fatalf("first run %+v", first)
	}
	runs := func() float64 {
		return metric(t, f.reg, "customs_workload_audit_runs_total", "ok,"+TriggerPolicy)
	}

	// A policy change (two in a row, inside the debounce).
	f.v.set(map[string]string{"bad:1": "bad is vulnerable"})
	changed := time.Now()
	for _, doc := range []string{"v1", "v2"} {
		if err := f.st.PutPolicy(ctx, &store.PolicyDocument{Name: "p", Document: doc, UpdatedBy: "alice"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a := waitAudit(t, f.st, 5*time.Second, func(a *store.WorkloadAudit) bool { return a.Trigger == TriggerPolicy })
	if took := time.Since(changed); took < 300*time.Millisecond {
		t.Errorf("ran %s after the first change, before the debounce", took)
	}
	if a.PolicyRevision != 2 || len(a.Findings) != 3 {
		t.Fatalf("after the policy change: %+v", a)
	}
	time.Sleep(500 * time.Millisecond)
	if n := runs(); n != 1 {
		t.Errorf("%v policy-triggered runs for two changes inside the debounce, want 1", n)
	}
	if ev := refusedEvents(f.rec); len(ev) != 2 {
		t.Errorf("%d refusal events, want 2", len(ev))
	}

	// A vulnerability database change.
	f.v.set(map[string]string{"bad:1": "bad is vulnerable", "good:1": "CVE-2026-1 is critical now"})
	// A new vulnerability database revision alone does not trigger the
	// audit (the reports still say what they said) ...
	if err := f.st.PutVulnOverride(ctx, &store.VulnOverrideRule{ID: "CVE-2026-1", Level: "critical", CreatedBy: "bob"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := metric(t, f.reg, "customs_workload_audit_runs_total", "ok,"+TriggerVulndb); n != 0 {
		t.Fatalf("%v runs on a vulnerability database change the reports were not matched against yet", n)
	}
	// ... the reports matched again at it do.
	if _, err := f.st.SetRematchedRevision(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	a = waitAudit(t, f.st, 5*time.Second, func(a *store.WorkloadAudit) bool { return a.Trigger == TriggerVulndb })
	if a.VulnRevision != 1 || len(a.Findings) != 4 {
		t.Fatalf("after the vulndb change: %+v", a)
	}
}

// TestLoopInterval: with nothing changing, the loop runs again once the
// stored result is older than the interval.
func TestLoopInterval(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := newFixture(t, Options{Interval: 400 * time.Millisecond, Poll: 20 * time.Millisecond})
	done := make(chan struct{})
	go func() { f.job.Loop(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitAudit(t, f.st, 5*time.Second, func(a *store.WorkloadAudit) bool { return a.Trigger == TriggerInterval })
}

// TestLoopOtherReplica: a replica that cannot take the lease does not run,
// and leaves the trigger pending until a result started after it is
// stored.
func TestLoopOtherReplica(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := newFixture(t, Options{Interval: time.Hour, Debounce: 50 * time.Millisecond, Poll: 20 * time.Millisecond})
	if _, err := f.st.ClaimWorkloadAudit(ctx, "other", time.Hour); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { f.job.Loop(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(300 * time.Millisecond)
	if _, err := f.st.LastWorkloadAudit(ctx); err == nil || f.v.calls != 0 {
		t.Fatalf("ran under another replica's lease (%d decisions)", f.v.calls)
	}
	// The other replica gives the lease up without a result: this one
	// runs its pending start trigger.
	if err := f.st.ReleaseWorkloadAudit(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	waitAudit(t, f.st, 5*time.Second, func(a *store.WorkloadAudit) bool { return a.Owner == "test" && a.Trigger == TriggerStart })
}

// metric reads a gauge's or counter's value from reg; labels are the
// label values joined by commas in label-name order ("" for none).
func metric(t *testing.T, reg *prometheus.Registry, name, labels string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, l := range m.GetLabel() {
				vals = append(vals, l.GetValue())
			}
			if strings.Join(vals, ",") != labels {
				continue
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
