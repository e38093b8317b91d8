// Command audit measures what the audit trail costs manifest pulls over real
// HTTP: it starts two `customs serve` processes on the same store kind, one
// recording every pull and one with audit.skip [artifact.pull], pushes one
// image to each, and then, in alternating rounds, drives manifest GETs by
// tag open-loop at a fixed rate (default 5,000/s, one audit event per pull)
// and closed-loop at saturation. It reports the achieved rate, latency
// p50/p99 (measured from each request's scheduled time, so a server that
// falls behind is charged for the queue) and the server's CPU per pull,
// audited beside not audited. After the rounds it stops the audited server
// gracefully and checks that the stored artifact.pull events equal the pulls
// it answered: none lost.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver, to count stored events
	_ "modernc.org/sqlite"             // "sqlite" driver, to count stored events

	"github.com/customs-dev/customs/internal/audit"
)

const (
	user     = "admin"
	password = "bench-audit-password-1"
	repo     = "bench/app"
	tag      = "v1"
	accept   = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
)

type options struct {
	customs   string
	store     string // sqlite or postgres
	pgDSN     string
	rate      int
	duration  time.Duration
	rounds    int
	satConc   int
	satDur    time.Duration
	workers   int
	workDir   string
	keep      bool
	drainWait time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.customs, "customs", "", "path of the customs binary (required)")
	flag.StringVar(&o.store, "store", "sqlite", "sqlite or postgres")
	flag.StringVar(&o.pgDSN, "postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL server for -store postgres (a schema per server is created and dropped)")
	flag.IntVar(&o.rate, "rate", 5000, "open-loop pulls per second")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each open-loop round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per server (alternating audited and not)")
	flag.IntVar(&o.satConc, "sat-conc", 32, "closed-loop concurrency of the saturated rounds")
	flag.DurationVar(&o.satDur, "sat-duration", 5*time.Second, "length of each saturated round")
	flag.IntVar(&o.workers, "workers", 512, "open-loop client goroutines (a request waits for a free one, and the wait counts in its latency)")
	flag.StringVar(&o.workDir, "work-dir", "", "where data directories go (default a temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directories")
	flag.DurationVar(&o.drainWait, "drain-timeout", 60*time.Second, "how long to wait for the audit queue to empty after a round")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/audit:", err)
		os.Exit(1)
	}
}

// arm is one server under test.
type arm struct {
	label    string
	audited  bool
	srv      *server
	hc       *http.Client
	answered atomic.Int64 // pulls answered 200, setup included
	open     []result
	sat      []result
}

func run(ctx context.Context, o options) error {
	if o.customs == "" {
		return errors.New("-customs is required")
	}
	if o.store != "sqlite" && o.store != "postgres" {
		return fmt.Errorf("-store %q is not sqlite or postgres", o.store)
	}
	dir := o.workDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "bench-audit-"); err != nil {
			return err
		}
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	arms := []*arm{{label: "audited", audited: true}, {label: "not audited (audit.skip: [artifact.pull])"}}
	for _, a := range arms {
		s, err := startServer(ctx, o, dir, a.audited)
		if err != nil {
			return err
		}
		defer s.stop()
		a.srv = s
		if a.hc, err = setup(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", a.label, err)
		}
		a.answered.Add(1) // setup's pull
	}
	fmt.Fprintf(os.Stderr, "servers ready; %d rounds of %s at %d pulls/s and %s saturated (%d clients)\n",
		o.rounds, o.duration, o.rate, o.satDur, o.satConc)

	// Warm both (connections, caches) before measuring.
	for _, a := range arms {
		if _, err := a.measure(ctx, o, func(ctx context.Context) (result, error) {
			return closedLoop(ctx, a, o.satConc, 2*time.Second)
		}); err != nil {
			return err
		}
	}
	for r := range o.rounds {
		order := slices.Clone(arms)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, a := range order {
			res, err := a.measure(ctx, o, func(ctx context.Context) (result, error) { return openLoop(ctx, a, o.rate, o.duration, o.workers) })
			if err != nil {
				return err
			}
			a.open = append(a.open, res)
			fmt.Fprintf(os.Stderr, "round %d %-45s open   %s\n", r+1, a.label, res)
		}
		for _, a := range order {
			res, err := a.measure(ctx, o, func(ctx context.Context) (result, error) { return closedLoop(ctx, a, o.satConc, o.satDur) })
			if err != nil {
				return err
			}
			a.sat = append(a.sat, res)
			fmt.Fprintf(os.Stderr, "round %d %-45s sat    %s\n", r+1, a.label, res)
		}
	}

	// Graceful stop, then count what was stored.
	lost := map[string]string{}
	for _, a := range arms {
		if err := a.srv.terminate(30 * time.Second); err != nil {
			return fmt.Errorf("%s: %w", a.label, err)
		}
		n, err := a.srv.countPulls(ctx)
		if err != nil {
			return fmt.Errorf("%s: counting stored pull events: %w", a.label, err)
		}
		want := a.answered.Load()
		if !a.audited {
			want = 0
		}
		lost[a.label] = fmt.Sprintf("%d pulls answered, %d artifact.pull events stored (want %d)", a.answered.Load(), n, want)
		if n != want {
			return fmt.Errorf("%s: %s", a.label, lost[a.label])
		}
	}
	report(os.Stdout, o, arms, lost)
	return nil
}

// measure runs fn with the server's CPU time counted from before it to after
// the audit queue is empty again, so the writer's work is charged to the
// round that caused it.
func (a *arm) measure(ctx context.Context, o options, fn func(context.Context) (result, error)) (result, error) {
	cpu0, err := a.srv.cpu()
	if err != nil {
		return result{}, err
	}
	load0 := loadAvg()
	res, err := fn(ctx)
	if err != nil {
		return res, fmt.Errorf("%s: %w", a.label, err)
	}
	start := time.Now()
	if err := a.srv.waitDrained(ctx, o.drainWait); err != nil {
		return res, fmt.Errorf("%s: %w", a.label, err)
	}
	res.drain = time.Since(start)
	cpu1, err := a.srv.cpu()
	if err != nil {
		return res, err
	}
	res.cpu = cpu1 - cpu0
	res.load = (load0 + loadAvg()) / 2
	a.answered.Add(res.ok)
	return res, nil
}

// setup creates project bench, pushes one image and returns a client whose
// requests carry a pull token for it (the server's tokens live an hour).
func setup(ctx context.Context, s *server) (*http.Client, error) {
	cmd := exec.CommandContext(ctx, s.bin, "project", "create", "bench", "--server", s.base())
	cmd.Env = append(os.Environ(), "CUSTOMS_USERNAME="+user, "CUSTOMS_PASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("customs project create bench: %w: %s", err, strings.TrimSpace(string(out)))
	}
	ref, err := name.ParseReference(s.addr+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		return nil, err
	}
	auth := &authn.Basic{Username: user, Password: password}
	if err := remote.Write(ref, img, remote.WithAuth(auth), remote.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("pushing %s: %w", ref, err)
	}
	base := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	rt, err := transport.NewWithContext(ctx, ref.Context().Registry, auth, base, []string{"repository:" + repo + ":pull"})
	if err != nil {
		return nil, fmt.Errorf("token for %s: %w", repo, err)
	}
	hc := &http.Client{Transport: rt, Timeout: 30 * time.Second}
	if err := pull(ctx, hc, s.base()); err != nil {
		return nil, err
	}
	return hc, nil
}

// pull GETs the manifest by tag and reads it.
func pull(ctx context.Context, hc *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", accept)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET manifest: %s", resp.Status)
	}
	return err
}

// loadAvg returns the 1-minute load average, or -1.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// readMetric returns the value of an unlabelled metric in a Prometheus text
// exposition.
func readMetric(r io.Reader, metric string) (float64, bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, metric+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// countPulls counts the artifact.pull events in the server's database.
func (s *server) countPulls(ctx context.Context) (int64, error) {
	driver, dsn := "sqlite", filepath.Join(s.dataDir, "customs.db")
	if s.pgDSN != "" {
		driver, dsn = "pgx", s.pgDSN
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT prev_hash, data FROM audit_blocks`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	var events []audit.Event
	var offs []int
	for rows.Next() {
		var prevHash, data string
		if err := rows.Scan(&prevHash, &data); err != nil {
			return 0, err
		}
		if events, offs, err = audit.AppendDecodedLazy(events[:0], offs[:0], data, prevHash); err != nil {
			return 0, err
		}
		for _, e := range events {
			if e.Action == "artifact.pull" && e.Outcome == audit.Success {
				n++
			}
		}
	}
	return n, rows.Err()
}
