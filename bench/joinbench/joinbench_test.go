package joinbench

import (
	"testing"
)

func TestRunSmallPool(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a grid of in-process nodes")
	}
	res, err := Run(Config{Pool: 12, Samples: 2, Profile: "lan", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Samples) != 2 || res.Median <= 0 || res.Max < res.Median || res.HeapPerNode == 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestRunRefusesTinyPools(t *testing.T) {
	if _, err := Run(Config{Pool: 3, Samples: 1}); err == nil {
		t.Fatal("a pool without townships was accepted")
	}
}
