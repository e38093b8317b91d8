package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/config"
)

// newAuthCmd is "customs auth": the server's token signing keys (system
// administrators).
func newAuthCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "List, rotate and retire the server's token signing keys (system administrators)",
		Long: `The server signs registry tokens, refresh tokens and login sessions with the
newest private key in its data directory's keys/ and verifies them with every
key there. Rotating makes a new signing key; tokens signed before keep working
as long as their key file stays. Every replica sharing the directory picks the
new key up within 30 seconds. See docs/access.md.`,
	}
	cf := bindClientFlags(cmd.PersistentFlags())

	var asJSON bool
	keys := &cobra.Command{
		Use:   "keys",
		Short: "List the token signing keys: key id, file, which one signs, age",
		Args:  cobra.NoArgs,
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			l, err := c.TokenKeys(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(l)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY ID\tSIGNING\tPRIVATE\tAGE\tFILE")
			for _, k := range l.Keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, yesNo(k.Signing), yesNo(k.Private),
					(time.Duration(k.AgeSeconds) * time.Second).String(), k.File)
			}
			return tw.Flush()
		}),
	}
	keys.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")

	var retire string
	rotate := &cobra.Command{
		Use:   "rotate-key [--retire-older-than AGE]",
		Short: "Make a new token signing key and print its key id; --retire-older-than also removes old keys",
		Long: `Make a new token signing key; new tokens are signed with it at once on this
server, within 30 seconds on replicas sharing the data directory. Tokens signed
before keep working. --retire-older-than AGE (e.g. 90d) then removes the key
files that stopped signing more than AGE ago — when the next key file was
written — (never the signing key); the server refuses an AGE under
the refresh-token lifetime (90 days by default), since tokens those keys signed
may still be valid.`,
		Args: cobra.NoArgs,
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			if retire != "" {
				// Refuse before rotating, not after.
				age, err := config.ParseDuration(retire)
				if err != nil {
					return apperr.Errorf(apperr.EINVALID, "--retire-older-than: %v", err)
				}
				l, err := c.TokenKeys(cmd.Context())
				if err != nil {
					return err
				}
				if min := time.Duration(l.MinRetireAgeSeconds) * time.Second; age.Std() < min {
					return apperr.Errorf(apperr.EINVALID, "--retire-older-than %s: refusing to remove keys younger than %s (the refresh token lifetime): tokens they signed may still be in use; nothing was rotated", retire, min)
				}
			}
			r, err := c.RotateTokenKey(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "new signing key %s (previous %s)\n", r.ID, r.Previous)
			if retire == "" {
				return nil
			}
			p, err := c.PruneTokenKeys(cmd.Context(), retire)
			if err != nil {
				return err
			}
			for _, k := range p.Removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed key %s (%s)\n", k.ID, k.File)
			}
			return nil
		}),
	}
	rotate.Flags().StringVar(&retire, "retire-older-than", "", "after rotating, remove key files retired longer ago than this age (at least the refresh-token lifetime, e.g. 90d)")

	cmd.AddCommand(keys, rotate)
	return cmd
}
