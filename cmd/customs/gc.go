package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/gc"
	"github.com/customs-dev/customs/internal/server"
)

func newGCCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove unreferenced blobs and abandoned uploads now",
		Long: `Remove blobs that no manifest references and that were not touched within
gc.gracePeriod, and upload sessions idle longer than gc.uploadMaxAge. Safe to run
while customs serve is running on the same data: it never races a push.`,
		Args: cobra.NoArgs,
	}
	cf := bindConfigFlags(cmd.Flags())
	grace := cmd.Flags().Duration("grace-period", 0, "override gc.gracePeriod for this run")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := cf.load(cmd.Flags())
		if err != nil {
			return err
		}
		logger := newLogger(cfg)
		ctx := cmd.Context()
		st, err := server.OpenStore(ctx, cfg, logger)
		if err != nil {
			return err
		}
		defer st.Close()
		blobs, err := server.OpenBlobs(cfg, logger)
		if err != nil {
			return err
		}
		g := cfg.GC.GracePeriod.Std()
		if cmd.Flags().Changed("grace-period") {
			g = *grace
		}
		stats, err := gc.New(gc.Options{Store: st, Blobs: blobs, Logger: logger, GracePeriod: g, UploadMaxAge: cfg.GC.UploadMaxAge.Std()}).Run(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "deleted %d blobs (%d bytes), %d abandoned uploads and the scan reports of %d deleted manifests in %s\n",
			stats.BlobsDeleted, stats.BytesFreed, stats.UploadsDeleted, stats.Scan.Reports, stats.Duration.Round(1e6))
		return nil
	}
	return cmd
}
