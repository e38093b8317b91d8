package extract

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	scalibrlog "github.com/google/osv-scalibr/log"
)

// RouteLogs sends osv-scalibr's log output to l, with its levels, under
// the attribute component=scalibr. By default scalibr writes through the
// standard library's global logger to stderr, unstructured.
//
// scalibr keeps its logger in a package variable: the one global customs
// does not own. RouteLogs replaces it and is not safe to call while
// extractions run; call it once, at process start (customs serve does),
// before any Extractor is used.
func RouteLogs(l *slog.Logger) {
	scalibrlog.SetLogger(slogLogger{l: l.With("component", "scalibr")})
}

// slogLogger is scalibr's log.Logger over a *slog.Logger.
type slogLogger struct{ l *slog.Logger }

var _ scalibrlog.Logger = slogLogger{}

func (s slogLogger) log(level slog.Level, msg string) {
	s.l.Log(context.Background(), level, strings.TrimRight(msg, "\n"))
}

func (s slogLogger) logf(level slog.Level, format string, args []any) {
	if s.l.Enabled(context.Background(), level) {
		s.log(level, fmt.Sprintf(format, args...))
	}
}

func (s slogLogger) logln(level slog.Level, args []any) {
	if s.l.Enabled(context.Background(), level) {
		s.log(level, strings.TrimSuffix(fmt.Sprintln(args...), "\n"))
	}
}

// Errorf logs at error level.
func (s slogLogger) Errorf(format string, args ...any) { s.logf(slog.LevelError, format, args) }

// Error logs at error level.
func (s slogLogger) Error(args ...any) { s.logln(slog.LevelError, args) }

// Warnf logs at warning level.
func (s slogLogger) Warnf(format string, args ...any) { s.logf(slog.LevelWarn, format, args) }

// Warn logs at warning level.
func (s slogLogger) Warn(args ...any) { s.logln(slog.LevelWarn, args) }

// Infof logs at info level.
func (s slogLogger) Infof(format string, args ...any) { s.logf(slog.LevelInfo, format, args) }

// Info logs at info level.
func (s slogLogger) Info(args ...any) { s.logln(slog.LevelInfo, args) }

// Debugf logs at debug level.
func (s slogLogger) Debugf(format string, args ...any) { s.logf(slog.LevelDebug, format, args) }

// Debug logs at debug level.
func (s slogLogger) Debug(args ...any) { s.logln(slog.LevelDebug, args) }
