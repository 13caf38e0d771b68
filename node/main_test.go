package node_test

import (
	"testing"

	"github.com/govgrid/govgrid/testgrid"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testgrid.IgnoreLeaks()...) }
