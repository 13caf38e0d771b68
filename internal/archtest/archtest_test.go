// Package archtest checks the shape of the module: which package may import which
// (docs/ARCHITECTURE.md). It has only tests.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/govgrid/govgrid"

// layer ranks the production packages: a package imports only packages of a lower layer.
var layer = map[string]int{
	"internal/backoff": 0, "internal/wake": 0, "internal/metric": 0, "internal/atomicfile": 0, "api/govgridpb": 0, "sitestate/logpb": 0,
	"casework": 1, "tier": 1, "replication/raftbadger": 1, "auth": 1, "pki": 1,
	"replication": 2, "catalog": 2,
	"catalog/sample": 3,
	"sitestate":      3,
	"api":            4, "web": 4,
	"api/grpcapi": 5, "api/httpapi": 5, "api/apitest": 5,
	"node":        6,
	"cmd/govgrid": 7,
}

// testOnly are packages that production packages must not import.
var testOnly = []string{"netfault", "testgrid", "chaos", "api/apitest"}

func TestImportsGoDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}:{{join .Imports \" \"}}", module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		pkg = strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		rank, production := layer[pkg]
		if !production {
			continue // tests, benchmarks, harnesses: may import anything
		}
		seen++
		for _, imp := range strings.Fields(imports) {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			imp = strings.TrimPrefix(imp, module+"/")
			for _, bad := range testOnly {
				if imp == bad && pkg != "api/apitest" {
					t.Errorf("%s imports %s, which is for tests only", pkg, imp)
				}
			}
			if r, ok := layer[imp]; ok && r >= rank {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports go down (docs/ARCHITECTURE.md)", pkg, rank, imp, r)
			} else if !ok && !isTestOnly(imp) {
				t.Errorf("%s imports %s, which has no layer: give it one in archtest", pkg, imp)
			}
		}
	}
	if seen < len(layer)-1 {
		t.Fatalf("checked %d production packages, expected %d: is the module path right?", seen, len(layer))
	}
}

func isTestOnly(pkg string) bool {
	for _, p := range testOnly {
		if p == pkg {
			return true
		}
	}
	return false
}
