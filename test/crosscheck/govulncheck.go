package crosscheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleFinding is one module-level finding of govulncheck: an advisory
// affecting a module (or "stdlib") at the version a binary holds.
type ModuleFinding struct {
	OSV     string
	Module  string
	Version string
	// Fixed is the earliest fixed version govulncheck names (with its "v"
	// prefix), empty when there is none.
	Fixed string
}

// GovulncheckResult is what one govulncheck run reported.
type GovulncheckResult struct {
	// ScannerVersion, ScanLevel and ScanMode are from the run's config
	// message.
	ScannerVersion, ScanLevel, ScanMode string
	// GoVersion is the binary's Go version from the SBOM message.
	GoVersion string
	// Findings are the module-level findings, in output order.
	Findings []ModuleFinding
}

// govulncheck -format json messages (golang.org/x/vuln internal/govulncheck).
type gvMessage struct {
	Config *struct {
		ScannerVersion string `json:"scanner_version"`
		ScanLevel      string `json:"scan_level"`
		ScanMode       string `json:"scan_mode"`
	} `json:"config"`
	SBOM *struct {
		GoVersion string `json:"go_version"`
	} `json:"SBOM"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

// RunGovulncheck runs tool (a govulncheck binary) as
// `govulncheck -mode=binary -scan=module -format json -db file://DB BIN`
// and returns its module-level findings. A finding whose trace names a
// package or function (not module level) is an error: -scan=module must not
// produce one.
func RunGovulncheck(ctx context.Context, tool, dbDir, bin string) (*GovulncheckResult, error) {
	abs, err := filepath.Abs(dbDir)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, tool, "-mode=binary", "-scan=module", "-format", "json",
		"-db", "file://"+filepath.ToSlash(abs), bin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// With -format json, govulncheck exits 0 whether or not it finds
		// anything; anything else is a failure to scan.
		return nil, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	res, err := ParseGovulncheckJSON(&stdout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	return res, nil
}

// ParseGovulncheckJSON reads govulncheck's -format json output: a stream of
// JSON objects of which the config, SBOM and finding messages are kept.
func ParseGovulncheckJSON(r io.Reader) (*GovulncheckResult, error) {
	dec := json.NewDecoder(r)
	res := &GovulncheckResult{}
	for n := 1; ; n++ {
		var m gvMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("govulncheck output message %d: %w", n, err)
		}
		switch {
		case m.Config != nil:
			res.ScannerVersion, res.ScanLevel, res.ScanMode = m.Config.ScannerVersion, m.Config.ScanLevel, m.Config.ScanMode
		case m.SBOM != nil:
			res.GoVersion = m.SBOM.GoVersion
		case m.Finding != nil:
			f := m.Finding
			if f.OSV == "" || len(f.Trace) != 1 || f.Trace[0].Module == "" {
				return nil, fmt.Errorf("govulncheck output message %d: finding %q has no single module frame", n, f.OSV)
			}
			if fr := f.Trace[0]; fr.Package != "" || fr.Function != "" {
				return nil, fmt.Errorf("govulncheck output message %d: finding %s is not module level (package %q, function %q)",
					n, f.OSV, fr.Package, fr.Function)
			}
			res.Findings = append(res.Findings, ModuleFinding{
				OSV: f.OSV, Module: f.Trace[0].Module, Version: f.Trace[0].Version, Fixed: f.FixedVersion,
			})
		}
	}
	return res, nil
}
