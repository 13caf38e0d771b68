package systems

import (
	"errors"
	"os"
	"sync"
	"time"

	"github.com/govgrid/govgrid/bench/loadgen"
)

// DefaultStartTimeout bounds how long a starter waits for its system to become ready.
const DefaultStartTimeout = 60 * time.Second

// ValueSize is the approximate payload of one write, in bytes.
const ValueSize = 1024

// Common holds the settings shared by all starters.
type Common struct {
	// WorkDir is the parent of the temporary data directory; "" means os.TempDir(). Put it on the
	// disk you want to measure: the systems fsync their writes.
	WorkDir string
	// StartTimeout bounds the wait for readiness; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// KeepData leaves the temporary directory (data and process logs) in place after Close.
	KeepData bool
}

func (c Common) startTimeout() time.Duration {
	if c.StartTimeout > 0 {
		return c.StartTimeout
	}
	return DefaultStartTimeout
}

// Target is a running system under test together with a client ready to drive it.
type Target struct {
	// System names the system ("etcd", "postgres", "govgrid").
	System string
	// Nodes is the number of server nodes.
	Nodes int
	// Dir is the temporary directory holding data and process logs.
	Dir string
	// PIDs are the server processes, one per node (for postgres, the postmaster).
	PIDs []int
	// DataDirs are the nodes' data directories, one per node, in the order of PIDs (set by
	// StartGovgrid only).
	DataDirs []string
	// HTTPAddrs are the nodes' HTTP API addresses, in the order of PIDs (set by StartGovgrid only).
	HTTPAddrs []string
	// Op writes one new record of about ValueSize bytes. It is safe for concurrent use.
	Op loadgen.Op

	closeOnce sync.Once
	closeErr  error
	closers   []func() error
}

// onClose registers f to run at Close; closers run in reverse order of registration.
func (t *Target) onClose(f func() error) { t.closers = append(t.closers, f) }

// Close closes the client, stops the server processes (gracefully, then by SIGKILL after a
// deadline) and removes the temporary directory. It is safe to call more than once.
func (t *Target) Close() error {
	t.closeOnce.Do(func() {
		var errs []error
		for i := len(t.closers) - 1; i >= 0; i-- {
			if err := t.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// closeOnError closes t if *err is non-nil; starters defer it so a failed start leaves nothing
// running.
func (t *Target) closeOnError(err *error) {
	if *err != nil {
		_ = t.Close()
	}
}

// newCluster prepares a cluster of nodes servers of system: it resolves binary (system's name
// on PATH when ""), creates the target with its temporary directory (newTarget) and finds
// portsPerNode free ports for each node. On an error it leaves nothing behind.
func newCluster(system, binary string, nodes, portsPerNode int, c Common) (t *Target, bin string, ports []int, err error) {
	if bin, err = lookBinary(binary, system); err != nil {
		return nil, "", nil, err
	}
	if t, err = newTarget(system, nodes, c); err != nil {
		return nil, "", nil, err
	}
	if ports, err = FreePorts(portsPerNode * nodes); err != nil {
		_ = t.Close()
		return nil, "", nil, err
	}
	return t, bin, ports, nil
}

// newTarget creates the target and its temporary directory, which Close removes unless keep.
func newTarget(system string, nodes int, c Common) (*Target, error) {
	dir, err := os.MkdirTemp(c.WorkDir, "govgrid-bench-"+system+"-")
	if err != nil {
		return nil, err
	}
	t := &Target{System: system, Nodes: nodes, Dir: dir}
	if !c.KeepData {
		t.onClose(func() error { return os.RemoveAll(dir) })
	}
	return t, nil
}
