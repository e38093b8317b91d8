package extract

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	scalibrlog "github.com/google/osv-scalibr/log"
)

// TestRouteLogs: scalibr's package-level log calls reach the slog logger
// with their levels, as one record each; debug is dropped at info level.
func TestRouteLogs(t *testing.T) {
	var buf bytes.Buffer
	RouteLogs(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	t.Cleanup(func() { scalibrlog.SetLogger(&scalibrlog.DefaultLogger{}) })

	scalibrlog.Errorf("reading %s failed: %d", "var/lib/dpkg/status", 3)
	scalibrlog.Warn("odd", "file")
	scalibrlog.Infof("extracted %d packages\n", 96)
	scalibrlog.Debugf("not shown %d", 1)
	scalibrlog.Debug("not shown either")

	type rec struct{ Level, Msg, Component string }
	var got []rec
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r rec
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		got = append(got, r)
	}
	want := []rec{
		{"ERROR", "reading var/lib/dpkg/status failed: 3", "scalibr"},
		{"WARN", "odd file", "scalibr"},
		{"INFO", "extracted 96 packages", "scalibr"},
	}
	if len(got) != len(want) {
		t.Fatalf("records %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
