package systems

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// RSS returns the resident set size of process pid in bytes, read from VmRSS in
// /proc/<pid>/status.
func RSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmRSS(f, f.Name())
}

// parseVmRSS finds the VmRSS line of a /proc/<pid>/status file named name.
func parseVmRSS(r io.Reader, name string) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest) // e.g. ["12345", "kB"]
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS in %s (kernel thread or zombie?)", name)
}

// SettledRSS reads the RSS of pid every interval until the last three readings differ by at
// most 1% of the largest, or maxWait has passed, and returns the last reading. settled is false
// when the deadline was hit first.
func SettledRSS(ctx context.Context, pid int, interval, maxWait time.Duration) (rss int64, settled bool, err error) {
	deadline := time.Now().Add(maxWait)
	var last []int64
	for {
		v, err := RSS(pid)
		if err != nil {
			return 0, false, err
		}
		last = append(last, v)
		if len(last) > 3 {
			last = last[1:]
		}
		if len(last) == 3 && stable(last, 0.01) {
			return v, true, nil
		}
		if !time.Now().Add(interval).Before(deadline) {
			return v, false, nil
		}
		select {
		case <-ctx.Done():
			return v, false, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// stable reports whether max(vals)-min(vals) <= frac*max(vals).
func stable(vals []int64, frac float64) bool {
	lo, hi := vals[0], vals[0]
	for _, v := range vals[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return float64(hi-lo) <= frac*float64(hi)
}
