package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb"
)

// OpenVulnDB returns the vulnerability database service over st with the
// configured sources and limits.
func OpenVulnDB(cfg config.Config, st store.Store, logger *slog.Logger) (*vulndb.Service, error) {
	var srcs []vulndb.Source
	for _, s := range cfg.Vulndb.Sources {
		srcs = append(srcs, vulndb.Source{Name: s.Name, Location: s.Location()})
	}
	return vulndb.Open(vulndb.Options{
		Store:         st,
		Logger:        logger,
		Sources:       srcs,
		MaxRecordSize: cfg.Vulndb.MaxRecordSize,
		MaxSourceSize: cfg.Vulndb.MaxSourceSize,
	})
}

// vulnUpdateDelay is how long after start the first scheduled update runs
// when the configured sources are due (not updated within the interval).
const vulnUpdateDelay = 10 * time.Second

// runVulnUpdateLoop updates the vulnerability database from its configured
// sources every interval, and soon after start when the last successful
// update of a source is older than that (or never happened). Every replica
// runs it: an unchanged source costs a conditional request and no write.
func (s *Server) runVulnUpdateLoop(ctx context.Context, every time.Duration) {
	if len(s.Vulndb.Sources()) == 0 {
		return
	}
	wait := every
	if st, err := s.Vulndb.Status(ctx); err == nil {
		for _, src := range st.Sources {
			if src.Configured && time.Since(src.LastSuccess) >= every {
				wait = vulnUpdateDelay
			}
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Vulndb.Update(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("scheduled vulnerability database update failed", "err", err)
			}
			t.Reset(every)
		}
	}
}
