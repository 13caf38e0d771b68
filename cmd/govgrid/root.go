package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "govgrid",
		Short:         "A grid of identical nodes for a district's government services (政务服务网格)",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newAgentCommand(), newDemoCommand(), newMembersCommand(), newSitesCommand(), newSiteCommand(), newCaseCommand(), newLeaveCommand(), newSnapshotCommand(), newCatalogCommand(),
		newLoginCommand(), newAuthCommand(), newAccountCommand(), newVerifyCommand(), newSealCommand(), newKeyringCommand(), newTokenCommand(), newTLSCommand(),
		newKeygenCommand())
	return root
}
