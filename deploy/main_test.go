// Package deploy tests the deployment files next to it: the example configs of each tier
// (config_test.go: the real binary accepts each one and serves) and the Dockerfile with the
// compose grid (compose_test.go: build the FROM-scratch image, start the grid, check the tree;
// compose_faults_test.go and hostfault_test.go: break a community's uplink with iptables and tc
// inside its container, and check that the grid converges and tells the truth meanwhile).
//
// Both build the static binary once, on first use; `go test -short` skips them.
package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string // temporary directory holding the binary; removed by TestMain
	buildBin  string // path of the static govgrid binary, once built
	buildErr  error
)

func TestMain(m *testing.M) {
	// This binary is also the slow link's delayer and its probe, and the bootstrap from a
	// district node's own host (staff_test.go), run inside a namespace.
	maybeRunDelayer()
	maybeRunProbe()
	maybeRunBootstrap()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// govgridBinary returns the path of a static (CGO_ENABLED=0) govgrid binary built from this
// module, building it on first use, as `make build` does. It skips t in -short mode.
func govgridBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the govgrid binary: skipped in -short mode")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "govgrid-deploy-"); buildErr != nil {
			return
		}
		bin := filepath.Join(buildDir, "govgrid")
		start := time.Now()
		// `go test` puts the toolchain running this test first in PATH.
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=deploy-test",
			"-o", bin, "github.com/govgrid/govgrid/cmd/govgrid")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("CGO_ENABLED=0 go build ./cmd/govgrid: %v\n%s", err, out)
			return
		}
		fmt.Printf("deploy: built %s in %s\n", bin, time.Since(start).Round(time.Millisecond))
		buildBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// cleanEnv is the environment without GOVGRID_* variables, which would override the settings
// under test (the agent reads them; the compose file interpolates them).
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOVGRID_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
