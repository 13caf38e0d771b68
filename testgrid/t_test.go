package testgrid_test

import (
	"testing"

	"github.com/govgrid/govgrid/testgrid"
)

// Every testing.TB is a testgrid.T: the grid's existing callers pass *testing.T unchanged.
var (
	_ testgrid.T = (*testing.T)(nil)
	_ testgrid.T = (*testing.B)(nil)
	_ testgrid.T = testing.TB(nil)
)
