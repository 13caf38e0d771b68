package systems

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on every Linux ABI).
const clockTick = 10 * time.Millisecond

// CPUTime returns the CPU time (user + system) used so far by the processes pids and all their
// descendants, including descendants that have exited and been waited for (their time is in their
// parent's cutime and cstime). The difference of two readings is the CPU a system used in between:
// for PostgreSQL, the postmaster and every backend; for govgrid and etcd, every node's process.
func CPUTime(pids []int) (time.Duration, error) {
	procs, err := readProcStats()
	if err != nil {
		return 0, err
	}
	children := make(map[int][]int, len(procs))
	for pid, st := range procs {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	var ticks int64
	seen := make(map[int]bool)
	stack := append([]int(nil), pids...)
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		st, ok := procs[pid]
		if !ok {
			if slices.Contains(pids, pid) {
				return 0, fmt.Errorf("process %d is gone", pid)
			}
			continue
		}
		ticks += st.ticks
		stack = append(stack, children[pid]...)
	}
	return time.Duration(ticks) * clockTick, nil
}

// procStat is what CPUTime needs of one /proc/<pid>/stat.
type procStat struct {
	ppid  int
	ticks int64 // utime + stime + cutime + cstime
}

// readProcStats reads /proc/<pid>/stat of every process; processes that exit while it reads are
// skipped.
func readProcStats() (map[int]procStat, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	out := make(map[int]procStat, len(dirs))
	for _, path := range dirs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // exited
		}
		pid, st, err := parseProcStat(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[pid] = st
	}
	return out, nil
}

// parseProcStat parses one /proc/<pid>/stat line (proc(5)): the command name is in parentheses
// and may itself hold spaces and parentheses, so the fields are counted from its last ')'.
func parseProcStat(b []byte) (int, procStat, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 1 || closing < open {
		return 0, procStat{}, fmt.Errorf("unreadable stat %q", b)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return 0, procStat{}, fmt.Errorf("pid: %w", err)
	}
	// Fields after the name, numbered from 3 (state) as in proc(5): 4 ppid, 14 utime, 15 stime,
	// 16 cutime, 17 cstime.
	f := bytes.Fields(b[closing+1:])
	if len(f) < 15 {
		return 0, procStat{}, fmt.Errorf("stat of %d has %d fields", pid, len(f)+2)
	}
	field := func(n int) (int64, error) { return strconv.ParseInt(string(f[n-3]), 10, 64) }
	ppid, err := field(4)
	if err != nil {
		return 0, procStat{}, fmt.Errorf("ppid: %w", err)
	}
	st := procStat{ppid: int(ppid)}
	for n := 14; n <= 17; n++ {
		v, err := field(n)
		if err != nil {
			return 0, procStat{}, fmt.Errorf("field %d: %w", n, err)
		}
		st.ticks += v
	}
	return pid, st, nil
}
