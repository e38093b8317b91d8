package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/store"
)

// auditSettingsAction is the action of the event recording the audit
// trail's own settings (which actions are skipped) when they change.
const auditSettingsAction = "audit.settings"

// auditSettingsActor is the settings event's actor (kind system), as the
// workload audit's events name it; the look-up at start filters on it, so
// it reads the actor index, not every event.
const auditSettingsActor = "customs"

// recordAuditSettings records an audit.settings event (actor customs, kind
// system, details "skip": the skipped actions, comma separated, sorted)
// through rec when cfg's skipped actions differ from those the newest such
// event in log names (none if there is no such event), so the trail says
// from when on which events are missing by choice.
func recordAuditSettings(ctx context.Context, log store.AuditStore, rec audit.Recorder, cfg config.Audit) error {
	skip := slices.Clone(cfg.Skip)
	slices.Sort(skip)
	skip = slices.Compact(skip)
	want := strings.Join(skip, ",")
	last, err := log.AuditEvents(ctx, store.AuditFilter{Actor: auditSettingsActor, Action: auditSettingsAction, N: 1})
	if err != nil {
		return fmt.Errorf("reading the audit trail's settings: %w", err)
	}
	if len(last) == 0 && want == "" || len(last) > 0 && last[0].Details["skip"] == want {
		return nil
	}
	rec.Record(ctx, audit.Event{ActorKind: audit.ActorSystem, Actor: auditSettingsActor, Action: auditSettingsAction, Resource: "audit",
		Outcome: audit.Success, Details: map[string]string{"skip": want}})
	return nil
}

// withAuditClient puts the client's address (as clientIP finds it) and user
// agent into each request's context, where audit.Writer fills them into the
// events recorded while serving it (the registry's, which do not see the
// request).
func withAuditClient(next http.Handler, clientIP func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(audit.WithClient(r.Context(), clientIP(r), r.UserAgent())))
	})
}
