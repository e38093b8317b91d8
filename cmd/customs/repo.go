package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/customs-dev/customs/internal/apperr"
)

func newRepoCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "repo", Aliases: []string{"repository"}, Short: "Delete repositories of a customs server"}
	cf := bindClientFlags(cmd.PersistentFlags())

	var yes bool
	del := &cobra.Command{
		Use:   "delete PROJECT/REPOSITORY [--yes]",
		Short: "Delete a repository with every tag and manifest (delete-repository in the project)",
		Long: `Delete a repository with every tag and manifest, its signatures and other
referrers included. Pulls of its tags fail at once; blobs no other repository
uses are reclaimed by the next garbage collection (customs gc). There is no undo:
without --yes the command asks you to type the repository's name, and refuses
when stdin is not a terminal.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo := args[0]
			if project, path, ok := strings.Cut(repo, "/"); !ok || project == "" || path == "" {
				return apperr.Errorf(apperr.EINVALID, "repository %q is not of the form PROJECT/REPOSITORY", repo)
			}
			if !yes {
				if err := confirmName(cmd.InOrStdin(), cmd.ErrOrStderr(), repo,
					fmt.Sprintf("Delete repository %s with every tag and manifest? Type its name to confirm: ", repo)); err != nil {
					return err
				}
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			del, err := c.DeleteRepository(cmd.Context(), repo)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "repository %s deleted: %d tags, %d manifests (unshared blobs go at the next customs gc)\n",
				del.Repository, del.Tags, del.Manifests)
			return nil
		},
	}
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.AddCommand(del)
	return cmd
}

// confirmName asks on stderr, when stdin is a terminal, for want to be
// typed; it returns EINVALID when stdin is not a terminal or the answer
// differs.
func confirmName(stdin io.Reader, stderr io.Writer, want, prompt string) error {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return apperr.Errorf(apperr.EINVALID, "refusing to delete %s without confirmation: pass --yes", want)
	}
	fmt.Fprint(stderr, prompt)
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return apperr.Errorf(apperr.EINVALID, "not confirmed: nothing deleted")
	}
	if strings.TrimSpace(line) != want {
		return apperr.Errorf(apperr.EINVALID, "not confirmed (%q is not %q): nothing deleted", strings.TrimSpace(line), want)
	}
	return nil
}
