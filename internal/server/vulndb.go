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
		// The vulndb.changeLogRetention key: 0 keeps the log forever.
		ChangeLogRetention: cfg.Vulndb.ChangeLogRetention.Std(),
	})
}

// vulnUpdateDelay is how long after start the first check for due sources
// runs.
const vulnUpdateDelay = 10 * time.Second

// vulnUpdateTick is how often a replica checks for sources due for their
// scheduled update: a tenth of the interval, between 10 seconds and 5
// minutes (a check is one query when nothing is due).
func vulnUpdateTick(every time.Duration) time.Duration {
	return min(max(every/10, 10*time.Second), 5*time.Minute)
}

// runVulnUpdateLoop runs the scheduled update: every replica checks, soon
// after start and then every vulnUpdateTick, for configured sources that no
// replica attempted within every, and imports those (vulndb.UpdateDue); a
// source's lease in the database makes one replica at a time import it.
func (s *Server) runVulnUpdateLoop(ctx context.Context, every time.Duration) {
	if len(s.Vulndb.Sources()) == 0 {
		return
	}
	t := time.NewTimer(vulnUpdateDelay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Vulndb.UpdateDue(ctx, every); err != nil && ctx.Err() == nil {
				s.logger.Error("scheduled vulnerability database update failed", "err", err)
			}
			t.Reset(vulnUpdateTick(every))
		}
	}
}
