package server

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customs-dev/customs/internal/reqlog"
)

// httpMetrics are the per-request Prometheus metrics.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	inflight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customs_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "customs_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customs_http_request_bytes_total", Help: "Request body bytes received by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customs_http_response_bytes_total", Help: "Response body bytes sent by route.",
		}, []string{"route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "customs_http_requests_in_flight", Help: "Requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.inflight)
	return m
}

// route classifies a path into a low-cardinality label.
func route(path string) string {
	switch {
	case path == "/v2/" || path == "/v2":
		return "v2"
	case path == "/v2/_catalog":
		return "catalog"
	case strings.HasPrefix(path, "/v2/"):
		switch {
		case strings.Contains(path, "/blobs/uploads"):
			return "upload"
		case strings.Contains(path, "/blobs/"):
			return "blob"
		case strings.Contains(path, "/manifests/"):
			return "manifest"
		case strings.HasSuffix(path, "/tags/list"):
			return "tags"
		case strings.Contains(path, "/referrers/"):
			return "referrers"
		}
		return "v2_other"
	case strings.HasPrefix(path, "/service/token"):
		return "token"
	case strings.HasPrefix(path, "/api/"):
		return "api"
	case path == "/healthz", path == "/readyz":
		return "health"
	case path == "/metrics":
		return "metrics"
	}
	return "other"
}

// instrument wraps next with request ids, a request-scoped logger, access
// logs, metrics and panic recovery.
func instrument(next http.Handler, logger *slog.Logger, m *httpMetrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		rl := logger.With("request_id", id)
		r = r.WithContext(reqlog.With(r.Context(), rl))
		rt := route(r.URL.Path)

		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		rw := &responseWriter{ResponseWriter: w, status: http.StatusOK}
		m.inflight.Inc()
		defer func() {
			m.inflight.Dec()
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				rl.Error("panic serving request", "panic", p, "method", r.Method, "path", r.URL.Path)
				if !rw.wrote {
					http.Error(rw, `{"errors":[{"code":"UNKNOWN","message":"internal error"}]}`, http.StatusInternalServerError)
				}
			}
			elapsed := time.Since(start)
			code := strconv.Itoa(rw.status)
			m.requests.WithLabelValues(rt, r.Method, code).Inc()
			m.duration.WithLabelValues(rt, r.Method).Observe(elapsed.Seconds())
			m.bytesIn.WithLabelValues(rt).Add(float64(body.n))
			m.bytesOut.WithLabelValues(rt).Add(float64(rw.n))
			level := slog.LevelInfo
			if rt == "health" || rt == "metrics" {
				level = slog.LevelDebug
			}
			if rw.status >= 500 {
				level = slog.LevelError
			}
			rl.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", rw.status,
				"duration", elapsed, "bytes_in", body.n, "bytes_out", rw.n, "remote", r.RemoteAddr, "user_agent", r.UserAgent())
		}()
		next.ServeHTTP(rw, r)
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// responseWriter records status and bytes. It implements io.ReaderFrom so
// that blob downloads keep the kernel's sendfile path, and Flusher and
// Unwrap for handlers that need them.
type responseWriter struct {
	http.ResponseWriter
	status int
	n      int64
	wrote  bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom lets io.Copy hand a file to the connection (sendfile).
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wrote = true
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.n += n
	return n, err
}

func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
