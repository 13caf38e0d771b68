package benchkit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"

	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
)

// T is a testgrid.T for benchmarks, which run outside go test: the grid harness the tests use
// (testgrid.New) starts, cuts and stops the benchmarks' in-process grids too. Get one from
// WithT, which runs its cleanups and turns a Fatalf into an error.
type T struct {
	dir string
	log io.Writer

	mu       sync.Mutex
	cleanups []func() // guarded by mu
	failed   error    // guarded by mu: the first Fatalf's message
}

var _ testgrid.T = (*T)(nil)

// errGoexit is WithT's error when f's goroutine ended without returning and without a Fatalf.
var errGoexit = errors.New("benchkit: the benchmark's goroutine exited (runtime.Goexit) without an error")

// WithT runs f with a T whose temporary directories are made under dir and whose log lines
// go to log (nil discards them). f runs in a goroutine of its own, as a test does: Fatalf
// records its message and ends that goroutine (runtime.Goexit), so, as with testing.T, it must
// be called from f's goroutine. When f returns or is ended, the cleanups registered with
// Cleanup run, the last registered first (a grid's nodes stop), and WithT returns f's error,
// or the Fatalf's. The directories are left for the caller, who owns dir.
func WithT(dir string, log io.Writer, f func(t *T) error) error {
	t := &T{dir: dir, log: log}
	done := make(chan error, 1)
	go func() {
		returned := false
		defer func() {
			if !returned {
				t.mu.Lock()
				err := t.failed
				t.mu.Unlock()
				if err == nil {
					err = errGoexit
				}
				done <- err
			}
		}()
		err := f(t)
		returned = true
		done <- err
	}()
	err := <-done
	t.runCleanups()
	return err
}

// runCleanups runs the registered cleanups, the last first, each once.
func (t *T) runCleanups() {
	for {
		t.mu.Lock()
		if len(t.cleanups) == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[len(t.cleanups)-1]
		t.cleanups = t.cleanups[:len(t.cleanups)-1]
		t.mu.Unlock()
		f()
	}
}

// Helper does nothing: there is no test log whose lines it would attribute.
func (t *T) Helper() {}

// Fatalf records the failure and ends the calling goroutine: WithT returns it as an error.
func (t *T) Fatalf(format string, args ...any) {
	t.mu.Lock()
	if t.failed == nil {
		t.failed = fmt.Errorf(format, args...)
	}
	t.mu.Unlock()
	runtime.Goexit()
}

// Logf writes one line to the log WithT was given.
func (t *T) Logf(format string, args ...any) {
	if t.log != nil {
		fmt.Fprintf(t.log, format+"\n", args...)
	}
}

// Cleanup registers f to run when WithT's function is done.
func (t *T) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// TempDir makes a new directory under WithT's dir (made first if need be).
func (t *T) TempDir() string {
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		t.Fatalf("benchkit: %v", err)
	}
	d, err := os.MkdirTemp(t.dir, "grid-")
	if err != nil {
		t.Fatalf("benchkit: %v", err)
	}
	return d
}

// GridSpec is a testgrid.Spec for a benchmark: the given sites, production timings (the
// node's defaults), and logger (nil discards the nodes' logs) for every node; configure, if
// set, adjusts each node's config after that.
func GridSpec(name string, logger *slog.Logger, configure func(*node.Config), sites ...testgrid.Site) testgrid.Spec {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return testgrid.Spec{
		Sites:             sites,
		GridName:          name,
		ProductionTimings: true,
		Configure: func(c *node.Config) {
			c.Logger = logger
			if configure != nil {
				configure(c)
			}
		},
	}
}
