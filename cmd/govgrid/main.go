// Command govgrid runs and operates a govgrid node: `govgrid agent` serves a site, `govgrid demo`
// starts a local three-tier grid, and the other subcommands talk to a running node.
package main

import (
	"fmt"
	"os"

	_ "time/tzdata" // a FROM-scratch image has no zoneinfo; case numbers need Asia/Shanghai
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "govgrid: "+err.Error())
		os.Exit(1)
	}
}
