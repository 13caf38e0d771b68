package systems

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// lookBinary resolves path (or def when path is "") to an executable file.
func lookBinary(path, def string) (string, error) {
	if path == "" {
		path = def
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("%s binary: %w", def, err)
	}
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		return "", fmt.Errorf("%s binary %q is not a file", def, p)
	}
	// Children run in their data directory, so a relative path must be made absolute.
	return filepath.Abs(p)
}

// stopAll stops the processes in parallel and waits for all of them.
func stopAll(procs []*process) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopEach stops the processes one at a time, in order.
func stopEach(procs []*process) error {
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.stop())
	}
	return errors.Join(errs...)
}
