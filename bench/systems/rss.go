package systems

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Mem is a process's resident memory in bytes, from /proc/<pid>/status. RSS (VmRSS) is Anon +
// File + shared memory. File counts mapped file pages (for badger: its memory-mapped tables and
// value logs), which are page cache the kernel can reclaim under pressure; Anon is memory the
// process itself owns (heap, stacks).
type Mem struct {
	RSS  int64 `json:"rss_bytes"`
	Anon int64 `json:"rss_anon_bytes"`
	File int64 `json:"rss_file_bytes"`
}

// RSS returns the resident set size of process pid in bytes, read from VmRSS in
// /proc/<pid>/status.
func RSS(pid int) (int64, error) {
	m, err := ReadMem(pid)
	return m.RSS, err
}

// ReadMem reads VmRSS, RssAnon and RssFile of process pid.
func ReadMem(pid int) (Mem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Mem{}, err
	}
	defer f.Close()
	return parseStatus(f, f.Name())
}

// parseStatus reads the VmRSS, RssAnon and RssFile lines of a /proc/<pid>/status file named
// name. VmRSS is required; RssAnon and RssFile (Linux 4.5+) are left 0 when absent.
func parseStatus(r io.Reader, name string) (Mem, error) {
	var m Mem
	fields := map[string]*int64{"VmRSS": &m.RSS, "RssAnon": &m.Anon, "RssFile": &m.File}
	haveRSS := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		dst, want := fields[key]
		if !ok || !want {
			continue
		}
		f := strings.Fields(rest) // e.g. ["12345", "kB"]
		if len(f) != 2 || f[1] != "kB" {
			return Mem{}, fmt.Errorf("unexpected %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Mem{}, err
		}
		*dst = kb * 1024
		haveRSS = haveRSS || key == "VmRSS"
	}
	if err := sc.Err(); err != nil {
		return Mem{}, err
	}
	if !haveRSS {
		return Mem{}, fmt.Errorf("no VmRSS in %s (kernel thread or zombie?)", name)
	}
	return m, nil
}

// SettledMem reads the memory of pid every interval until the last three VmRSS readings differ
// by at most 1% of the largest, or maxWait has passed, and returns the last reading. settled is
// false when the deadline was hit first.
func SettledMem(ctx context.Context, pid int, interval, maxWait time.Duration) (m Mem, settled bool, err error) {
	deadline := time.Now().Add(maxWait)
	var last []int64
	for {
		m, err := ReadMem(pid)
		if err != nil {
			return Mem{}, false, err
		}
		last = append(last, m.RSS)
		if len(last) > 3 {
			last = last[1:]
		}
		if len(last) == 3 && stable(last, 0.01) {
			return m, true, nil
		}
		if !time.Now().Add(interval).Before(deadline) {
			return m, false, nil
		}
		select {
		case <-ctx.Done():
			return m, false, ctx.Err()
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

// DirSize walks dir like du: disk is the space allocated to its regular files (st_blocks × 512,
// each inode counted once), apparent the sum of their lengths. Badger preallocates sparse value
// logs, so apparent can be far above disk.
func DirSize(dir string) (disk, apparent int64, err error) {
	seen := map[uint64]bool{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path != dir {
				return nil // removed while walking (badger compaction)
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
			disk += st.Blocks * 512
		}
		apparent += info.Size()
		return nil
	})
	return disk, apparent, err
}
