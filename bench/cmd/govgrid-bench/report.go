package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/govgrid/govgrid/bench/joinbench"

	"github.com/govgrid/govgrid/bench/convergebench"
	"github.com/govgrid/govgrid/bench/handoffbench"
	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/bench/loadgen"
	"github.com/govgrid/govgrid/bench/mirrorbench"
)

// report is everything one invocation measured; it is printed and optionally written as JSON.
type report struct {
	Started  time.Time     `json:"started"`
	Machine  machine       `json:"machine"`
	Duration time.Duration `json:"duration_ns"`
	Warmup   time.Duration `json:"warmup_ns"`
	Cells    []cell        `json:"cells"`
	Memory   *memoryResult `json:"memory,omitempty"`
	// MemorySkipped says why Memory is absent, if it is.
	MemorySkipped string `json:"memory_skipped,omitempty"`
	// Join is the join-to-listed benchmark, one result per pool size.
	Join      []joinbench.Result `json:"join,omitempty"`
	JoinError string             `json:"join_error,omitempty"`
	// Handoff is the handoff benchmark (relay latency, throughput through one township, drain
	// after a partition); with HandoffError it holds what was measured before the failure.
	Handoff      *handoffbench.Result `json:"handoff,omitempty"`
	HandoffError string               `json:"handoff_error,omitempty"`
	// Feeds is the feeds benchmark (visibility lag at the district, a district mirror loaded
	// through feeds: its subtree listings and memory); with FeedsError it holds what was
	// measured before the failure.
	Feeds      *mirrorbench.Result `json:"feeds,omitempty"`
	FeedsError string              `json:"feeds_error,omitempty"`
	// Converge is the convergence benchmark (time to converge after a silent cut, over cycles
	// and over a compressed day); with ConvergeError it holds what was measured before the
	// failure.
	Converge      *convergebench.Result `json:"converge,omitempty"`
	ConvergeError string                `json:"converge_error,omitempty"`
}

// cell is one system × nodes × concurrency measurement.
type cell struct {
	System      string          `json:"system"`
	Nodes       int             `json:"nodes"`
	Concurrency int             `json:"concurrency"`
	Result      *loadgen.Result `json:"result,omitempty"`
	// CPUPerOp is the CPU time (user + system) of all the system's processes during the measured
	// window, divided by the operations that succeeded in it; 0 when it could not be read.
	CPUPerOp time.Duration `json:"cpu_per_op_ns,omitempty"`
	// CPUCores is that CPU time divided by the window: how many cores the servers kept busy.
	CPUCores float64 `json:"cpu_cores,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// machine describes where the benchmark ran.
type machine struct {
	NProc     int               `json:"nproc"`
	CPU       string            `json:"cpu"`
	MemTotal  string            `json:"mem_total"`
	Kernel    string            `json:"kernel"`
	GoVersion string            `json:"go_version"`
	DataDir   string            `json:"data_dir"`
	DataFS    string            `json:"data_fs"`
	Versions  map[string]string `json:"versions"`
}

func describeMachine(o options) machine {
	m := machine{
		NProc:     runtime.NumCPU(),
		CPU:       procField("/proc/cpuinfo", "model name"),
		MemTotal:  memTotal(),
		Kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		GoVersion: runtime.Version(),
		DataDir:   o.workDir,
		Versions:  map[string]string{},
	}
	if m.DataDir == "" {
		m.DataDir = os.TempDir()
	}
	m.DataFS = fsType(m.DataDir)
	for _, sys := range o.systems {
		if !o.cells && !(o.memory && sys == "govgrid") {
			continue // not run: no version to show
		}
		switch sys {
		case "etcd":
			m.Versions[sys] = firstLine(o.etcd, "--version")
		case "postgres":
			bin := "postgres"
			if o.pgBinDir != "" {
				bin = filepath.Join(o.pgBinDir, "postgres")
			}
			m.Versions[sys] = firstLine(bin, "--version")
		case "govgrid":
			m.Versions[sys] = firstLine(o.govgrid, "--version") + " (" + o.govgrid + ")"
		}
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	for line := range strings.Lines(readFile(path)) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// memTotal returns the machine's RAM in GiB.
func memTotal() string {
	var kb int64
	if _, err := fmt.Sscanf(procField("/proc/meminfo", "MemTotal"), "%d kB", &kb); err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// firstLine runs a short command and returns the first line of its output, or "?: error".
func firstLine(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "?: " + err.Error()
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// fsType names the filesystem holding dir: fsync on tmpfs is free, which flatters every system.
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "?"
	}
	names := map[int64]string{
		0xEF53: "ext2/3/4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs",
		0x794c7630: "overlayfs", 0x2FC12FC1: "zfs", 0x6a656a63: "fakeowner",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", st.Type)
}

// printReport writes the human-readable report: header, the results table, notes, memory.
func printReport(w io.Writer, r *report) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	m := r.Machine
	fmt.Fprintf(bw, "# govgrid benchmark — %s\n\n", r.Started.Format(time.RFC3339))
	fmt.Fprintf(bw, "- machine: %d CPUs (%s), %s RAM, kernel %s, %s\n", m.NProc, m.CPU, m.MemTotal, m.Kernel, m.GoVersion)
	fmt.Fprintf(bw, "- data: %s (%s)\n", m.DataDir, m.DataFS)
	for _, k := range slices.Sorted(maps.Keys(m.Versions)) {
		fmt.Fprintf(bw, "- %s: %s\n", k, m.Versions[k])
	}
	if len(r.Cells) == 0 {
		fmt.Fprintln(bw, "\nNo system was measured (the table of systems was left out, or interrupted before its first cell).")
	} else {
		printCells(bw, r)
	}

	printMemory(bw, r)
}

// printCells writes the table of systems and its notes.
func printCells(bw io.Writer, r *report) {
	fmt.Fprintf(bw, "- per cell: fresh servers on 127.0.0.1, %v warmup + %v measured, closed loop, 1 KiB writes (etcd Put, postgres INSERT, govgrid SubmitCase over gRPC with a bearer token, which the node verifies)\n\n", r.Warmup, r.Duration)
	fmt.Fprintln(bw, "| system | nodes | concurrency | ops/s | p50 | p99 | server CPU/op (cores) | govgrid/etcd (ops, p99, CPU/op) | govgrid/postgres (ops, p99, CPU/op) |")
	fmt.Fprintln(bw, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	var notes []string
	for _, c := range r.Cells {
		if c.Result == nil {
			fmt.Fprintf(bw, "| %s | %d | %d | failed | | | | | |\n", c.System, c.Nodes, c.Concurrency)
			notes = append(notes, fmt.Sprintf("%s × %d, concurrency %d did not start: %s", c.System, c.Nodes, c.Concurrency, firstLineOf(c.Error)))
			continue
		}
		res := c.Result
		vsEtcd, vsPG := "", ""
		if c.System == "govgrid" {
			vsEtcd = ratios(&c, r.find("etcd", c.Nodes, c.Concurrency))
			vsPG = ratios(&c, r.find("postgres", 1, c.Concurrency))
		}
		fmt.Fprintf(bw, "| %s | %d | %d | %.0f | %s | %s | %s | %s | %s |\n",
			c.System, c.Nodes, c.Concurrency, res.OpsPerSec, benchkit.FmtMillis(res.P50), benchkit.FmtMillis(res.P99), cpuCell(&c), vsEtcd, vsPG)
		if res.Elapsed < r.Duration {
			notes = append(notes, fmt.Sprintf("%s × %d, concurrency %d: interrupted after %v of %v", c.System, c.Nodes, c.Concurrency, res.Elapsed.Round(time.Millisecond), r.Duration))
		}
		if res.Errors > 0 {
			notes = append(notes, fmt.Sprintf("%s × %d, concurrency %d: %d errors (first: %s)", c.System, c.Nodes, c.Concurrency, res.Errors, firstLineOf(res.FirstError)))
		}
	}
	fmt.Fprintln(bw)
	if slices.ContainsFunc(r.Cells, func(c cell) bool { return c.System == "govgrid" }) {
		fmt.Fprintln(bw, "Ratios are govgrid ÷ the other system at the same nodes and concurrency (postgres: 1 node): ops above 1×, p99 and CPU/op below 1× favour govgrid.")
		fmt.Fprintln(bw, "Server CPU/op is the user + system time of all the system's server processes (every node; postgres with its backends) during the measured window, per successful operation; in brackets, the cores they kept busy.")
	}
	for _, n := range notes {
		fmt.Fprintf(bw, "- %s\n", n)
	}
}

// printMemory writes govgrid's memory footprint, or why it was not measured.
func printMemory(bw io.Writer, r *report) {
	if r.MemorySkipped != "" {
		fmt.Fprintf(bw, "\nMemory measurement skipped: %s.\n", r.MemorySkipped)
	}
	if mem := r.Memory; mem != nil {
		fmt.Fprintf(bw, "\n## Memory: 1-node govgrid site (agent's /proc/<pid>/status)\n\n")
		if mem.IdleRSS > 0 {
			fmt.Fprintf(bw, "- idle after start: %s%s\n", benchkit.RSSParts(mem.IdleRSS, mem.IdleRSSAnon, mem.IdleRSSFile), unsettled(mem.IdleSettled))
		}
		if mem.Load.Ops+mem.Load.Errors > 0 {
			l := mem.Load
			fmt.Fprintf(bw, "- load: %d cases with %d clients in %v (%.0f cases/s, p50 %s, p99 %s, %d errors)\n",
				mem.Cases, memoryConcurrency, l.Elapsed.Round(time.Millisecond), l.OpsPerSec, benchkit.FmtMillis(l.P50), benchkit.FmtMillis(l.P99), l.Errors)
		}
		if mem.LoadedRSS > 0 {
			fmt.Fprintf(bw, "- after loading %d cases: %s%s\n", mem.Cases, benchkit.RSSParts(mem.LoadedRSS, mem.LoadedRSSAnon, mem.LoadedRSSFile), unsettled(mem.LoadSettled))
		}
		if mem.DataApparent > 0 {
			fmt.Fprintf(bw, "- data directory after the load: %s on disk (du), %s apparent\n", benchkit.MiB(mem.DataDisk), benchkit.MiB(mem.DataApparent))
		}
		if mem.Error != "" {
			fmt.Fprintf(bw, "- error: %s\n", firstLineOf(mem.Error))
		}
		if mem.IdleRSS > 0 {
			fmt.Fprintln(bw, "\nRssFile is badger's memory-mapped tables and value logs: page cache the kernel reclaims under pressure; RssAnon is memory the process owns.")
		}
	}
}

// find returns a measured cell, or nil.
func (r *report) find(system string, nodes, concurrency int) *cell {
	for i, c := range r.Cells {
		if c.System == system && c.Nodes == nodes && c.Concurrency == concurrency && c.Result != nil {
			return &r.Cells[i]
		}
	}
	return nil
}

// ratios formats govgrid's throughput, p99 and CPU per operation relative to another system's.
func ratios(gg, other *cell) string {
	if other == nil || other.Result.OpsPerSec == 0 || other.Result.P99 == 0 {
		return "—"
	}
	s := fmt.Sprintf("%.2f×, %.2f×", gg.Result.OpsPerSec/other.Result.OpsPerSec, float64(gg.Result.P99)/float64(other.Result.P99))
	if gg.CPUPerOp > 0 && other.CPUPerOp > 0 {
		s += fmt.Sprintf(", %.2f×", float64(gg.CPUPerOp)/float64(other.CPUPerOp))
	}
	return s
}

// cpuCell formats a cell's server CPU per operation and the cores it kept busy.
func cpuCell(c *cell) string {
	if c.CPUPerOp <= 0 {
		return "—"
	}
	return fmt.Sprintf("%d µs (%.2f)", c.CPUPerOp.Microseconds(), c.CPUCores)
}

func unsettled(settled bool) string {
	if settled {
		return ""
	}
	return fmt.Sprintf(" (still changing >1%% after %v)", settleMax)
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// writeJSON writes r, indented, to path.
func writeJSON(path string, r *report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
