// Command bench-scan runs `customs scan` (inventory + matching against a
// local vulnerability database) and `syft scan` (inventory alone) side by
// side on the same images, measuring each run with /usr/bin/time -v: wall
// time, CPU time and peak RSS, median over rounds that alternate which
// tool goes first. See bench/README.md; run it with bench/scan/run.sh.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scan:", err)
		os.Exit(1)
	}
}

type config struct {
	customs, syft, syftVersion, debian, repo, out, workdir string
	goBinaries                                             []string
	rounds                                                 int
}

func run() error {
	var c config
	var gobins string
	flag.StringVar(&c.customs, "customs", "", "customs binary (required)")
	flag.StringVar(&c.syft, "syft", "", "syft binary (required)")
	flag.StringVar(&c.syftVersion, "syft-version", "", "syft's version, for the results (a go-installed syft does not know it)")
	flag.StringVar(&c.debian, "debian", "", "Debian OCI layout (scripts/test-deps.sh builds it; required)")
	flag.StringVar(&c.repo, "repo", ".", "repository root (for testdata)")
	flag.StringVar(&gobins, "gobin", "", "comma-separated Go binaries to put in the mixed-language image")
	flag.IntVar(&c.rounds, "rounds", 3, "runs of each tool per image")
	flag.StringVar(&c.out, "out", "", "also write the results (Markdown) to this file")
	flag.StringVar(&c.workdir, "workdir", "", "directory for the images and database (default a temp dir, removed)")
	flag.Parse()
	if c.customs == "" || c.syft == "" || c.debian == "" {
		return fmt.Errorf("-customs, -syft and -debian are required")
	}
	if gobins != "" {
		c.goBinaries = strings.Split(gobins, ",")
	}
	if c.workdir == "" {
		dir, err := os.MkdirTemp("", "customs-bench-scan-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.workdir = dir
	}
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		return fmt.Errorf("/usr/bin/time is needed (apt-get install time): %w", err)
	}

	mixed := filepath.Join(c.workdir, "mixed")
	logf("building the mixed-language image (Debian + Go binaries, Python, npm, Java, Ruby) in %s", mixed)
	if err := writeMixedImage(c.debian, mixed, c.goBinaries); err != nil {
		return fmt.Errorf("mixed image: %w", err)
	}
	data := filepath.Join(c.workdir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	sources := []string{"testdata/vulndata/osv/go/all.zip", "testdata/vulndata/osv/pypi/all.zip", "test/scancli/testdata/debian-12"}
	args := []string{"vulndb", "import", "--data-dir", data}
	for _, s := range sources {
		args = append(args, filepath.Join(c.repo, s))
	}
	logf("importing %s into %s", strings.Join(sources, ", "), data)
	if out, err := exec.Command(c.customs, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("customs vulndb import: %v\n%s", err, out)
	}

	images := []struct{ name, dir string }{{"debian-bookworm", c.debian}, {"mixed (debian + languages)", mixed}}
	var rows []row
	for _, img := range images {
		for _, tool := range []string{"customs", "syft"} {
			rows = append(rows, row{image: img.name, tool: tool})
		}
		cust, sy := &rows[len(rows)-2], &rows[len(rows)-1]
		for round := range c.rounds {
			order := []*row{cust, sy}
			if round%2 == 1 {
				order = []*row{sy, cust}
			}
			for _, r := range order {
				m, err := c.measure(r.tool, img.dir)
				if err != nil {
					return fmt.Errorf("%s on %s: %w", r.tool, img.name, err)
				}
				logf("%-28s %-8s round %d: %6.2fs wall, %6.2fs CPU, %4d MiB peak RSS, %d packages (%d OS)",
					img.name, r.tool, round+1, m.wall.Seconds(), m.cpu.Seconds(), m.rssKiB>>10, m.packages, m.osPackages)
				r.runs = append(r.runs, m)
			}
		}
	}
	var buf bytes.Buffer
	c.writeResults(&buf, rows)
	os.Stdout.Write(buf.Bytes())
	if c.out != "" {
		return os.WriteFile(c.out, buf.Bytes(), 0o644)
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// measurement is one run of a tool.
type measurement struct {
	wall, cpu            time.Duration
	rssKiB               int64
	packages, osPackages int
}

type row struct {
	image, tool string
	runs        []measurement
}

// measure runs tool on the OCI layout dir under /usr/bin/time -v.
func (c *config) measure(tool, dir string) (measurement, error) {
	out := filepath.Join(c.workdir, tool+".json")
	timeFile := filepath.Join(c.workdir, "time.txt")
	var args []string
	switch tool {
	case "customs":
		args = []string{c.customs, "scan", "-q", "--data-dir", filepath.Join(c.workdir, "data"), "--format", "json", "--output", out, dir}
	case "syft":
		args = []string{c.syft, "scan", "-q", "oci-dir:" + dir, "-o", "syft-json=" + out}
	}
	cmd := exec.Command("/usr/bin/time", append([]string{"-v", "-o", timeFile}, args...)...)
	cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return measurement{}, fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	m, err := parseTime(timeFile)
	if err != nil {
		return m, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return m, err
	}
	switch tool {
	case "customs":
		var r struct {
			Inventory struct {
				Packages []struct {
					Ecosystem string `json:"ecosystem"`
				} `json:"packages"`
			} `json:"inventory"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return m, err
		}
		m.packages = len(r.Inventory.Packages)
		for _, p := range r.Inventory.Packages {
			if p.Ecosystem == "Debian" {
				m.osPackages++
			}
		}
	case "syft":
		var r struct {
			Artifacts []struct {
				Type string `json:"type"`
			} `json:"artifacts"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return m, err
		}
		m.packages = len(r.Artifacts)
		for _, a := range r.Artifacts {
			if a.Type == "deb" {
				m.osPackages++
			}
		}
	}
	return m, nil
}

// parseTime reads the report of GNU time -v.
func parseTime(path string) (measurement, error) {
	f, err := os.Open(path)
	if err != nil {
		return measurement{}, err
	}
	defer f.Close()
	var m measurement
	var user, sys float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), ": ")
		if !ok {
			continue
		}
		switch key {
		case "User time (seconds)":
			user, _ = strconv.ParseFloat(val, 64)
		case "System time (seconds)":
			sys, _ = strconv.ParseFloat(val, 64)
		case "Maximum resident set size (kbytes)":
			m.rssKiB, _ = strconv.ParseInt(val, 10, 64)
		case "Elapsed (wall clock) time (h:mm:ss or m:ss)":
			m.wall = parseClock(val)
		}
	}
	m.cpu = time.Duration((user + sys) * float64(time.Second))
	if m.wall == 0 || m.rssKiB == 0 {
		return m, fmt.Errorf("%s: no wall time or peak RSS in GNU time's report", path)
	}
	return m, sc.Err()
}

// parseClock reads "m:ss.ss" or "h:mm:ss".
func parseClock(s string) time.Duration {
	var d float64
	for _, part := range strings.Split(s, ":") {
		v, _ := strconv.ParseFloat(part, 64)
		d = d*60 + v
	}
	return time.Duration(d * float64(time.Second))
}

func median[T int64 | time.Duration | int](vs []T) T {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r row) medians() (wall, cpu time.Duration, rss int64) {
	var walls, cpus []time.Duration
	var rsss []int64
	for _, m := range r.runs {
		walls, cpus, rsss = append(walls, m.wall), append(cpus, m.cpu), append(rsss, m.rssKiB)
	}
	return median(walls), median(cpus), median(rsss)
}

func (c *config) writeResults(w io.Writer, rows []row) {
	sv := c.syftVersion
	if sv == "" {
		sv = "of unknown version"
	}
	fmt.Fprintf(w, "# customs scan vs syft\n\n")
	fmt.Fprintf(w, "Run %s on %s (%d CPUs), %d rounds per tool and image (alternating which goes first), medians; "+
		"wall and CPU time (user + sys) and peak RSS from `/usr/bin/time -v`. syft %s.\n\n",
		time.Now().UTC().Format("2006-01-02"), cpuModel(), runtime.NumCPU(), c.rounds, sv)
	fmt.Fprintf(w, "customs: `customs scan --data-dir DATA --format json IMAGE` — inventory **and** matching against the "+
		"imported Go, PyPI and Debian test advisories (index built from the database in the same process). "+
		"syft: `syft scan oci-dir:IMAGE -o syft-json` — inventory alone.\n\n")
	fmt.Fprintf(w, "| image | tool | wall | CPU | peak RSS | packages (OS) |\n|---|---|---:|---:|---:|---:|\n")
	for _, r := range rows {
		wall, cpu, rss := r.medians()
		last := r.runs[len(r.runs)-1]
		fmt.Fprintf(w, "| %s | %s | %.2f s | %.2f s | %d MiB | %d (%d) |\n", r.image, r.tool, wall.Seconds(), cpu.Seconds(), rss>>10, last.packages, last.osPackages)
	}
	fmt.Fprintf(w, "\nTargets (customs' full scan no slower than syft's inventory, with lower peak memory):\n\n")
	for i := 0; i+1 < len(rows); i += 2 {
		cw, _, cr := rows[i].medians()
		sw, _, sr := rows[i+1].medians()
		fmt.Fprintf(w, "- %s: time %s (%.2f s vs %.2f s, ratio %.2f), peak RSS %s (%d vs %d MiB, ratio %.2f)\n", rows[i].image,
			met(cw <= sw), cw.Seconds(), sw.Seconds(), cw.Seconds()/sw.Seconds(), met(cr < sr), cr>>10, sr>>10, float64(cr)/float64(sr))
	}
}

func met(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
