package config

import (
	"strings"
	"testing"
	"time"
)

func TestScanKeys(t *testing.T) {
	c, err := Load("", []string{"CUSTOMS_SCAN_WORKERS=4", "CUSTOMS_SCAN_JOB_TIMEOUT=5m"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Scan.Workers != 4 || c.Scan.JobTimeout != Duration(5*time.Minute) || c.Scan.MaxAttempts != 5 {
		t.Errorf("scan config %+v", c.Scan)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  func(*Scan)
		key  string
	}{
		{"negative workers", func(s *Scan) { s.Workers = -1 }, "scan.workers:"},
		{"too many workers", func(s *Scan) { s.Workers = 1000 }, "scan.workers:"},
		{"no attempts", func(s *Scan) { s.MaxAttempts = 0 }, "scan.maxAttempts:"},
		{"short timeout", func(s *Scan) { s.JobTimeout = Duration(time.Second) }, "scan.jobTimeout:"},
		{"busy rematch", func(s *Scan) { s.RematchInterval = 0 }, "scan.rematchInterval:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.set(&c.Scan)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("Validate = %v, want an error naming %s", err, tc.key)
			}
		})
	}
	if Default().Scan.PushSBOM {
		t.Error("scan.pushSBOM is on by default, want off")
	}
	c, err = Load("", []string{"CUSTOMS_SCAN_PUSH_SBOM=true"})
	if err != nil || !c.Scan.PushSBOM {
		t.Errorf("CUSTOMS_SCAN_PUSH_SBOM=true: pushSBOM %v, %v", c.Scan.PushSBOM, err)
	}
	c = Default()
	c.Scan.Workers = 0
	if err := c.Validate(); err != nil {
		t.Errorf("0 workers (a replica that only queues) refused: %v", err)
	}
}
