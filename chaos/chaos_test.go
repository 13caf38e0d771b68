package chaos

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/testgrid"
	"go.uber.org/goleak"
)

// The settings, from flags or the environment (the Makefile's `chaos` target sets the latter).
const (
	envSeed      = "GOVGRID_CHAOS_SEED"
	envDuration  = "GOVGRID_CHAOS_DURATION"
	envInProcess = "GOVGRID_CHAOS_INPROCESS"
	// envChild marks the child process that runs the grid (set by the parent test only).
	envChild = "GOVGRID_CHAOS_CHILD"
	// envArtifacts, if set, is where failure artifacts go (porcupine's HTML, the child's log).
	envArtifacts = "GOVGRID_CHAOS_ARTIFACTS"
)

var (
	seedFlag     = flag.Uint64("seed", 0, "seed of the chaos schedule (0: $"+envSeed+", else random)")
	durationFlag = flag.Duration("duration", 0, "how long faults are injected (0: $"+envDuration+", else 40s, 15s with -short)")
)

// settings of one run.
type settings struct {
	seed     uint64
	duration time.Duration
}

func (s settings) rerun() string {
	return fmt.Sprintf("make chaos SEED=%d DURATION=%s   (or: %s=%d %s=%s go test -run TestChaos -v ./chaos)",
		s.seed, s.duration, envSeed, s.seed, envDuration, s.duration)
}

func loadSettings(t *testing.T) settings {
	t.Helper()
	s := settings{seed: *seedFlag, duration: *durationFlag}
	if s.seed == 0 {
		if v := os.Getenv(envSeed); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("%s=%q: not a seed: %v", envSeed, v, err)
			}
			s.seed = n
		}
	}
	for s.seed == 0 {
		s.seed = rand.Uint64() % 1_000_000_000
	}
	if s.duration == 0 {
		if v := os.Getenv(envDuration); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				t.Fatalf("%s=%q: not a duration (e.g. 10m)", envDuration, v)
			}
			s.duration = d
		}
	}
	if s.duration == 0 {
		s.duration = 40 * time.Second
		if testing.Short() {
			s.duration = 15 * time.Second
		}
	}
	return s
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testgrid.IgnoreLeaks()...)
}

// TestChaos runs the grid under faults (see the package doc). It starts this test binary again
// as a child that runs the grid, so that a node's panic, which ends its process, is reported
// here with the seed instead of ending the test run.
func TestChaos(t *testing.T) {
	s := loadSettings(t)
	if os.Getenv(envChild) != "" || os.Getenv(envInProcess) != "" {
		runChaos(t, s)
		return
	}
	runChild(t, s)
}

// runChild runs TestChaos in a child process with the same settings and judges its end.
func runChild(t *testing.T, s settings) {
	t.Logf("chaos: seed %d, faults for %v (the grid runs in a child process)", s.seed, s.duration)
	dir, ours := os.Getenv(envArtifacts), false
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", fmt.Sprintf("govgrid-chaos-%d-", s.seed)); err != nil {
			t.Fatal(err)
		}
		ours = true
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "child.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.duration+10*time.Minute)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestChaos$", "-test.v", "-test.count=1",
		"-test.timeout="+(s.duration+8*time.Minute).String())
	cmd.Env = append(os.Environ(), envChild+"=1", envSeed+"="+strconv.FormatUint(s.seed, 10),
		envDuration+"="+s.duration.String(), envArtifacts+"="+dir)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			lines = append(lines, line)
			fmt.Fprintln(logFile, line)
			if testing.Verbose() {
				fmt.Println(line)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	waitErr := cmd.Wait()
	pw.Close()
	<-scanned
	logFile.Close()

	passed := waitErr == nil && containsLine(lines, "--- PASS: TestChaos")
	if passed {
		for _, l := range lines {
			if i := strings.Index(l, "chaos: summary"); i >= 0 {
				t.Log(l[i:])
			}
		}
		if ours {
			os.RemoveAll(dir)
		}
		return
	}
	t.Errorf("chaos FAILED with seed %d: %s\nrerun: %s\nthe child's whole log: %s (artifacts in %s)",
		s.seed, diagnose(lines, waitErr), s.rerun(), logPath, dir)
}

func containsLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return true
		}
	}
	return false
}

// diagnose names why the child failed: a panic (a node's, which ends the process), a data
// race, a timeout, or the test's own failures, with the lines that show it.
func diagnose(lines []string, waitErr error) string {
	var b strings.Builder
	progress := func() {
		// What the grid was doing just before: the child's last progress lines.
		var last []string
		for _, l := range lines {
			if strings.Contains(l, "chaos: ") {
				last = append(last, strings.TrimSpace(l))
			}
		}
		if len(last) > 12 {
			last = last[len(last)-12:]
		}
		fmt.Fprintf(&b, "\nlast progress lines of the child:\n  %s", strings.Join(last, "\n  "))
		// Broken invariants the clients saw before the end, which the child had no time to
		// report as failures.
		var seen []string
		for _, l := range lines {
			if strings.Contains(l, "chaos: VIOLATION: ") {
				seen = append(seen, strings.TrimSpace(l))
			}
		}
		if len(seen) > 0 {
			fmt.Fprintf(&b, "\nviolations the clients saw before (%d):\n  %s", len(seen), strings.Join(seen[:min(len(seen), 10)], "\n  "))
		}
	}
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "panic: test timed out"):
			fmt.Fprintf(&b, "the child timed out: %s", l)
			progress()
			return b.String()
		case strings.HasPrefix(l, "panic: "), strings.HasPrefix(l, "fatal error: "):
			fmt.Fprintf(&b, "the grid's process died of a panic (invariant 8: no request, retry or peer message may stop a site):\n  %s", l)
			// The panicking goroutine's first frames say where.
			end := min(len(lines), i+24)
			for _, s := range lines[i+1 : end] {
				fmt.Fprintf(&b, "\n  %s", s)
			}
			progress()
			return b.String()
		case strings.HasPrefix(l, "WARNING: DATA RACE"):
			end := min(len(lines), i+30)
			fmt.Fprintf(&b, "a data race:\n  %s", strings.Join(lines[i:end], "\n  "))
			return b.String()
		}
	}
	// The test's own failures: the last lines of the child's log hold them.
	tail := lines
	if len(tail) > 60 {
		tail = tail[len(tail)-60:]
	}
	fmt.Fprintf(&b, "the child failed (%v); the end of its log:\n%s", waitErr, strings.Join(tail, "\n"))
	return b.String()
}

// artifactDir is where a failing run leaves what explains it: the directory the parent chose,
// else a new directory under the system's temporary directory that is kept.
func artifactDir(t *testing.T, s settings) string {
	if v := os.Getenv(envArtifacts); v != "" {
		return v
	}
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("govgrid-chaos-%d-", s.seed))
	if err != nil {
		return os.TempDir()
	}
	return dir
}
