// Command customs is the customs server and its command-line client.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/apperr"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "customs",
		Short:         "customs governs which container images may run: registry, scanner, policy, admission",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newServeCmd(), newProjectCmd(), newGCCmd(), newConfigCmd(), newImageCmd(),
		newLoginCmd(), newLogoutCmd(), newUserCmd(), newRobotCmd(), newAuditCmd(), newVulndbCmd(), newScanCmd(), newPolicyCmd(), newAllowlistCmd(), newAdmissionCmd(), newGateCmd(), newAuthCmd(), newRepoCmd())
	return root
}

// exitCode prints err and maps it to the process exit code: 0 ok, 2 usage
// or invalid input, 3 not found, 4 unauthorized/denied, 1 anything else.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	// A command that chose its exit code (customs scan: 1 --fail-on met,
	// 2 error).
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "customs:", errorText(ee.err))
		}
		return ee.code
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		fmt.Fprintln(os.Stderr, "customs:", ae.Message)
	} else {
		fmt.Fprintln(os.Stderr, "customs:", err)
	}
	switch apperr.Code(err) {
	case apperr.EINVALID:
		return 2
	case apperr.ENOTFOUND:
		return 3
	case apperr.EUNAUTHORIZED, apperr.EDENIED:
		return 4
	}
	return 1
}
