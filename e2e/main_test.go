// Package e2e runs the real govgrid binary as separate processes and checks it from the outside:
// configuration errors, configuration sources, crash recovery (SIGKILL) of one node and of a
// three-node site under write load, clean shutdown, and the gRPC health and reflection services.
//
// TestMain builds the binary once; `go test -short` skips the whole package.
package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// govgridBin is the path of the binary TestMain built; empty when the tests are skipped.
var govgridBin string

// skipReason says why govgridBin is empty.
var skipReason = "the govgrid binary was not built"

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		skipReason = "end-to-end tests build and run the govgrid binary: skipped in -short mode"
		fmt.Println("e2e: " + skipReason)
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "govgrid-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "govgrid")
	start := time.Now()
	// `go test` puts $GOROOT/bin first in PATH, so "go" is the toolchain running this test.
	build := exec.Command("go", "build", "-o", bin, "github.com/govgrid/govgrid/cmd/govgrid")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the govgrid binary: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Printf("e2e: built %s in %s\n", bin, time.Since(start).Round(time.Millisecond))
	if err := initTrust(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the grid's CA: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	govgridBin = bin
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		httpTransport.CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: goroutines leaked by the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// binary returns the path of the govgrid binary, or skips t when TestMain did not build it.
func binary(t *testing.T) string {
	t.Helper()
	if govgridBin == "" {
		t.Skip(skipReason)
	}
	return govgridBin
}
