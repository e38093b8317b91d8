// Package reqlog carries a request-scoped logger (with the request id) in a
// context, so handlers log with the id without knowing who set it.
package reqlog

import (
	"context"
	"log/slog"
)

type key struct{}

// With returns ctx carrying logger.
func With(ctx context.Context, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, key{}, logger)
}

// From returns the logger carried by ctx, or fallback when there is none.
func From(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(key{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}
