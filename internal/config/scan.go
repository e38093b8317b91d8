package config

import "time"

// Scan configures the scanner (package scan).
type Scan struct {
	// Workers is how many scan jobs this server runs at once; 0 runs none
	// (the server still queues scans for other replicas).
	Workers int `yaml:"workers"`
	// MaxAttempts bounds the runs of a failing scan job before it is
	// reported as failed.
	MaxAttempts int `yaml:"maxAttempts"`
	// JobTimeout bounds one run of a scan job.
	JobTimeout Duration `yaml:"jobTimeout"`
	// RematchInterval is how often the server checks the vulnerability
	// database's revision to match stored inventories again.
	RematchInterval Duration `yaml:"rematchInterval"`
	// PushSBOM stores, after each scan that reads an image's layers, the
	// image's inventory as a CycloneDX SBOM referrer of the image in the
	// repositories holding it, in every project (default off: only
	// projects whose sbomReferrer setting is on).
	PushSBOM bool `yaml:"pushSBOM"`
}

func defaultScan() Scan {
	return Scan{
		Workers:         2,
		MaxAttempts:     5,
		JobTimeout:      Duration(30 * time.Minute),
		RematchInterval: Duration(5 * time.Second),
	}
}

// validateScan checks the scan keys.
func (c *Config) validateScan(bad func(key, format string, args ...any)) {
	s := c.Scan
	if s.Workers < 0 || s.Workers > 64 {
		bad("scan.workers", "must be between 0 (no scanning on this server) and 64, got %d", s.Workers)
	}
	if s.MaxAttempts < 1 || s.MaxAttempts > 100 {
		bad("scan.maxAttempts", "must be between 1 and 100, got %d", s.MaxAttempts)
	}
	if s.JobTimeout < Duration(time.Minute) {
		bad("scan.jobTimeout", "must be at least 1m, got %s", s.JobTimeout)
	}
	if s.RematchInterval < Duration(time.Second) {
		bad("scan.rematchInterval", "must be at least 1s, got %s", s.RematchInterval)
	}
}
