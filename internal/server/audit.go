package server

import (
	"net/http"

	"github.com/customs-dev/customs/internal/audit"
)

// withAuditClient puts the client's address (as clientIP finds it) and user
// agent into each request's context, where audit.Writer fills them into the
// events recorded while serving it (the registry's, which do not see the
// request).
func withAuditClient(next http.Handler, clientIP func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(audit.WithClient(r.Context(), clientIP(r), r.UserAgent())))
	})
}
