// Command registry benchmarks customs against the CNCF distribution registry
// side by side: blob push and pull at several sizes and concurrencies, and
// manifest HEAD/GET by tag, on fresh servers with data dirs on one filesystem,
// driven by one identical client. It prints a Markdown table of rates, p50 and
// p99 latencies with their customs/distribution ratios, the servers' peak RSS,
// and which of the targets were met. It exits non-zero only on errors.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	servers      string
	customsBin   string
	registryBin  string
	sizes        string
	concs        string
	quick        bool
	blobs        bool
	manifests    bool
	ops          int
	rounds       int
	roundBytes   string
	manifestReqs int
	maxRowBytes  string
	workDir      string
	keep         bool
	out          string
	tolerance    float64
	disk         string
	memory       string
	cacheDir     string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/registry:", err)
		os.Exit(1)
	}
}

// defaultCacheDir is where run.sh keeps test binaries; digests are cached there too.
func defaultCacheDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "customs-test")
}

// parseFlags reads the command line into options.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cache := defaultCacheDir()
	fs.StringVar(&o.servers, "servers", "customs,distribution", "servers to compare, subject first: customs and/or distribution (twice to measure noise)")
	fs.StringVar(&o.customsBin, "customs", "customs", "customs binary")
	fs.StringVar(&o.registryBin, "registry", filepath.Join(cache, "bin", "registry"), "distribution registry binary")
	fs.StringVar(&o.sizes, "sizes", "1MiB,64MiB,1GiB", "blob sizes")
	fs.StringVar(&o.concs, "concurrency", "1,8,32", "concurrency levels")
	fs.BoolVar(&o.quick, "quick", false, "only 1 MiB blobs, fewer operations per row: under a minute")
	fs.BoolVar(&o.blobs, "blobs", true, "run the blob push/pull rows")
	fs.BoolVar(&o.manifests, "manifests", true, "run the manifest HEAD/GET rows")
	fs.IntVar(&o.ops, "ops", 0, "operations per blob row (default: by size, see README)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds per row and server, alternating servers; each metric is the median over rounds")
	fs.StringVar(&o.roundBytes, "round-bytes", "24GiB", "rows pushing more than this in all rounds get fewer rounds (at least one)")
	fs.IntVar(&o.manifestReqs, "manifest-requests", 0, "requests per manifest row (default 3000, 300 with -quick)")
	fs.StringVar(&o.maxRowBytes, "max-row-bytes", "32GiB", "cap on bytes pushed per blob row and server")
	fs.StringVar(&o.workDir, "workdir", "", "directory for data dirs and logs (default: a new temp dir)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work dir (server logs) after the run")
	fs.StringVar(&o.out, "out", "", "also write the Markdown report to this file")
	fs.Float64Var(&o.tolerance, "tolerance", 0.05, "shortfall below the baseline still counted as matching")
	fs.StringVar(&o.disk, "disk", "auto", "disk baseline: auto (before each round of push 1 GiB ×1, if it runs), always (also 3 runs up front otherwise), never")
	fs.StringVar(&o.memory, "memory", string(memoryReused), "memory state for the disk baseline and the push 1 GiB ×1 row, prepared before each timed write: reused (right after an untimed write and removal of a scratch file of the same size), settled (once the VM's free page reporting is idle), as-is")
	fs.StringVar(&o.cacheDir, "cache-dir", cache, "where generated-blob digests are cached (empty: no cache)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

// buildPlan turns options into a plan, checking every value.
func buildPlan(o *options, log io.Writer) (*plan, error) {
	p := &plan{blobs: o.blobs, manifests: o.manifests, opsOverride: o.ops, quick: o.quick, log: log}
	mode, err := parseMemoryMode(o.memory)
	if err != nil {
		return nil, err
	}
	p.memoryMode = mode
	kinds := strings.Split(o.servers, ",")
	if len(kinds) < 1 || len(kinds) > 2 {
		return nil, fmt.Errorf("-servers %q: want one or two of customs, distribution", o.servers)
	}
	for i, k := range kinds {
		spec := serverSpec{kind: serverKind(strings.TrimSpace(k)), label: strings.TrimSpace(k)}
		switch spec.kind {
		case kindCustoms:
			spec.bin = o.customsBin
		case kindDistribution:
			spec.bin = o.registryBin
		default:
			return nil, fmt.Errorf("-servers: unknown server %q (want customs or distribution)", k)
		}
		if len(kinds) == 2 && kinds[0] == kinds[1] {
			spec.label = fmt.Sprintf("%s-%d", spec.kind, i+1)
		}
		bin, err := exec.LookPath(spec.bin)
		if err != nil {
			return nil, fmt.Errorf("%s binary: %w (run bench/registry/run.sh, or pass -%s)", spec.kind, err, map[serverKind]string{kindCustoms: "customs", kindDistribution: "registry"}[spec.kind])
		}
		spec.bin = bin
		p.servers = append(p.servers, spec)
	}
	sizes := o.sizes
	if o.quick {
		sizes = "1MiB"
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := parseSize(s)
		if err != nil {
			return nil, fmt.Errorf("-sizes: %w", err)
		}
		p.sizes = append(p.sizes, n)
	}
	for _, s := range strings.Split(o.concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("-concurrency: %q is not a number from 1 to 1024", s)
		}
		p.concs = append(p.concs, n)
	}
	slices.Sort(p.sizes)
	p.sizes = slices.Compact(p.sizes)
	slices.Sort(p.concs)
	p.concs = slices.Compact(p.concs)
	if p.maxRowBytes, err = parseSize(o.maxRowBytes); err != nil {
		return nil, fmt.Errorf("-max-row-bytes: %w", err)
	}
	if p.roundBytes, err = parseSize(o.roundBytes); err != nil {
		return nil, fmt.Errorf("-round-bytes: %w", err)
	}
	if o.rounds < 1 || o.rounds > 100 {
		return nil, fmt.Errorf("-rounds %d: want 1 to 100", o.rounds)
	}
	p.rounds = o.rounds
	p.manifestReqs = o.manifestReqs
	if p.manifestReqs <= 0 {
		p.manifestReqs = 3000
		if o.quick {
			p.manifestReqs = 300
		}
	}
	if o.ops < 0 {
		return nil, fmt.Errorf("-ops %d: want a positive number", o.ops)
	}
	if o.tolerance < 0 || o.tolerance >= 1 {
		return nil, fmt.Errorf("-tolerance %v: want a fraction in [0, 1)", o.tolerance)
	}
	if o.disk != "auto" && o.disk != "always" && o.disk != "never" {
		return nil, fmt.Errorf("-disk %q: want auto, always or never", o.disk)
	}
	if !p.blobs && !p.manifests {
		return nil, errors.New("nothing to run: -blobs=false and -manifests=false")
	}
	return p, nil
}

// run is the whole benchmark: parse flags, run every row, print the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	p, err := buildPlan(o, stderr)
	if err != nil {
		return err
	}
	if p.digests, err = newDigester(o.cacheDir); err != nil {
		return err
	}
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return err
	}
	p.cred = credentials{user: "admin", password: hex.EncodeToString(pw)}
	p.workDir = o.workDir
	if p.workDir == "" {
		if p.workDir, err = os.MkdirTemp("", "customs-bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(p.workDir)
		}
	} else if err := os.MkdirAll(p.workDir, 0o755); err != nil {
		return err
	}

	started := time.Now()
	p.started = started
	rep := &report{tolerance: o.tolerance}
	for _, s := range p.servers {
		rep.labels = append(rep.labels, s.label)
	}
	if o.disk != "never" {
		fmt.Fprintf(stderr, "disk baseline: untimed warm-up write of %s in %s\n", formatSize(diskTargetSize), p.workDir)
		if err := warmDisk(p.workDir, diskTargetSize); err != nil {
			return fmt.Errorf("disk warm-up: %w", err)
		}
		if p.memoryMode != memoryAsIs {
			if p.memory, err = newMemoryPrep(p.memoryMode, p.workDir, diskTargetSize); err != nil {
				return err
			}
		}
		if p.blobs && slices.Contains(p.sizes, diskTargetSize) && slices.Contains(p.concs, 1) {
			p.disk = &diskResult{size: diskTargetSize}
		} else if o.disk == "always" {
			fmt.Fprintf(stderr, "disk baseline: 3 × %s sequential write + fsync in %s\n", formatSize(diskTargetSize), p.workDir)
			d, err := measureDisk(p.workDir, diskTargetSize, 3, p.memory.prepare)
			if err != nil {
				return err
			}
			p.disk = &d
		}
	}
	group := 0
	if p.manifests {
		rows, err := p.runManifestGroup(ctx, group)
		if err != nil {
			return err
		}
		rep.rows = append(rep.rows, rows...)
		group++
	}
	if p.blobs {
		var pushes, pulls []*row
		for _, size := range p.sizes {
			for _, c := range p.concs {
				rows, err := p.runBlobGroup(ctx, group, size, c)
				if err != nil {
					return err
				}
				pushes, pulls = append(pushes, rows[0]), append(pulls, rows[1])
				group++
			}
		}
		rep.rows = append(append(rep.rows, pushes...), pulls...)
	}
	rep.disk = p.disk
	rep.memory = p.memoryMode
	rep.header = environment(p, o, started)
	rep.notes = notes(p)

	var buf bytes.Buffer
	rep.markdown(&buf)
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	if o.out != "" {
		return os.WriteFile(o.out, buf.Bytes(), 0o644)
	}
	return nil
}

// environment describes the machine, the servers and the command for the report.
func environment(p *plan, o *options, started time.Time) []string {
	var out []string
	out = append(out, fmt.Sprintf("date: %s, duration %s", started.UTC().Format("2006-01-02 15:04 MST"), time.Since(started).Round(time.Second)))
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	var uts syscall.Utsname
	kernel := ""
	if syscall.Uname(&uts) == nil {
		kernel = int8String(uts.Release[:])
	}
	out = append(out, fmt.Sprintf("machine: %s, %d CPUs, Linux %s, client built with %s", cpu, runtime.NumCPU(), kernel, runtime.Version()))
	for _, s := range p.servers {
		out = append(out, fmt.Sprintf("%s: `%s` %s", s.label, s.bin, version(s.bin)))
	}
	if src := cmp.Or(os.Getenv("BENCH_SOURCE"), revision()); src != "" {
		out = append(out, "source: "+src)
	}
	cmd := os.Getenv("BENCH_COMMAND")
	if cmd == "" {
		cmd = "go run ./bench/registry " + strings.Join(os.Args[1:], " ")
	}
	out = append(out, fmt.Sprintf("command: `%s`", strings.TrimSpace(cmd)))
	return out
}

// revision returns the git commit the benchmark was built from, as the Go
// toolchain stamped it ("" when unknown, e.g. under go test).
func revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = " (with uncommitted changes)"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return "git " + rev[:min(12, len(rev))] + dirty
}

// int8String converts a NUL-terminated utsname field.
func int8String(f []int8) string {
	b := make([]byte, 0, len(f))
	for _, c := range f {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// version asks a server binary for its version (first line of --version).
func version(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return "(" + line + ")"
}

// notes explains how the rows were run, for readers of the report.
func notes(p *plan) []string {
	out := []string{
		"Rates are MB/s (10^6 bytes/s) of payload for blob rows and requests/s for manifest rows, over the row's wall time; p50/p99 are nearest-rank per-operation latencies (a push is POST + monolithic PUT). With few operations p99 is the slowest one.",
		"Ratios are " + ratioLabel(p) + ": above 1 is better for rates, below 1 is better for latencies.",
		"Each (size, concurrency) pair runs on freshly started servers with empty data dirs on the same filesystem, one server at a time (order alternating), data removed and `sync` between them. Pull rows read back the blobs just pushed (page cache warm for both servers alike), each once.",
		"Clients: one net/http connection pool per server, one go-containerregistry auth transport per worker, tokens obtained before each timed row (one worker first, then the rest in parallel); blob content is generated on the fly by a seeded PRNG, digests computed beforehand.",
		"Peak RSS: the server's VmHWM (reset through /proc/PID/clear_refs at the start of the row) and VmRSS sampled every 20 ms, whichever is larger, the largest over rounds. CPU: the server's user + system time during the row (/proc/PID/stat), median over rounds; the client runs on the same cores.",
	}
	var capped []string
	for _, size := range p.sizes {
		for _, c := range p.concs {
			if n := p.opsFor(size, c); n < c {
				capped = append(capped, fmt.Sprintf("%s ×%d runs %d blobs (effective concurrency %d)", formatSize(size), c, n, n))
			}
		}
	}
	if len(capped) > 0 {
		out = append(out, "Rows limited by -max-row-bytes "+formatSize(p.maxRowBytes)+": "+strings.Join(capped, "; ")+".")
	}
	return out
}

// ratioLabel names the ratio columns, e.g. "customs/distribution".
func ratioLabel(p *plan) string {
	if len(p.servers) < 2 {
		return "not computed (one server)"
	}
	return p.servers[0].label + "/" + p.servers[1].label
}
