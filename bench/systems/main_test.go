package systems

import (
	"os"
	"testing"
)

// fakeAgentEnv makes the test binary act as a govgrid agent (see fakeagent_test.go).
const fakeAgentEnv = "GOVGRID_BENCH_FAKE_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(fakeAgentEnv) == "1" {
		os.Exit(runFakeAgent(os.Args[1:]))
	}
	os.Exit(m.Run())
}
