package systems

import (
	"os"
	"os/exec"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// A name with spaces and parentheses, as proc(5) allows.
	line := []byte("4242 (a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 1 1 1\n")
	pid, st, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if pid != 4242 || st.ppid != 17 || st.ticks != 250+50+7+3 {
		t.Fatalf("got pid %d ppid %d ticks %d, want 4242, 17, 310", pid, st.ppid, st.ticks)
	}
	if _, _, err := parseProcStat([]byte("garbage")); err == nil {
		t.Fatal("garbage parsed")
	}
}

// TestCPUTimeCountsChildren burns CPU in a child process and checks that the parent's tree
// (this test process) accounts for it once the child is waited for.
func TestCPUTimeCountsChildren(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	self := os.Getpid()
	before, err := CPUTime([]int{self})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	if err := cmd.Run(); err != nil {
		t.Skipf("no sh: %v", err)
	}
	child := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	after, err := CPUTime([]int{self})
	if err != nil {
		t.Fatal(err)
	}
	// Ticks are 10 ms; allow one tick of rounding on each side.
	if got := after - before; got+2*clockTick < child {
		t.Fatalf("tree CPU grew by %v, the child alone used %v", got, child)
	}
	if _, err := CPUTime([]int{1 << 30}); err == nil {
		t.Fatal("no error for a missing process")
	}
}
