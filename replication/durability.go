package replication

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// The state database writes without syncing (replication/DESIGN.md, "Power loss"): each batch
// is one badger transaction with its applied index, which a process crash (kill -9) never tears,
// because the operating system still holds every page the process wrote. A power cut or a kernel
// crash can: badger's logs are memory-mapped and written back in any order, so the applied index
// could survive while a change below it is lost, and Raft would never replay it.
//
// So the state is trusted after an unclean stop only if the machine did not restart in between.
// While the state is open, <data-dir>/state.open holds the kernel's boot id; a clean Close
// removes it. At Open, a marker from another boot means the machine went down with the state
// open: the state is thrown away and rebuilt from the newest snapshot and the Raft log (which
// is synced on every write, and kept from the snapshot on).

// stateOpenMarker is the file that says the state is open, and since which boot.
const stateOpenMarker = "state.open"

// bootIDFile is where Linux says which boot this is; elsewhere every unclean stop counts as a
// restart of the machine.
var bootIDFile = "/proc/sys/kernel/random/boot_id"

func bootID() []byte {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		return nil
	}
	return bytes.TrimSpace(b)
}

// checkStateAfterStop throws the state directory away when the last run left it open and the
// machine restarted since, and marks it open for this boot. It reports whether it threw it away.
func checkStateAfterStop(dataDir string, logger *slog.Logger) (bool, error) {
	marker := filepath.Join(dataDir, stateOpenMarker)
	now := bootID()
	prev, err := os.ReadFile(marker)
	discarded := false
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("replication: read %s: %w", marker, err)
	case len(now) == 0 || !bytes.Equal(bytes.TrimSpace(prev), now):
		state := filepath.Join(dataDir, "state")
		logger.Warn("the machine restarted while this node's state was open (a power cut or a crash of the system): "+
			"rebuilding the state from the last snapshot and the Raft log", "state", state, "last_boot", string(bytes.TrimSpace(prev)))
		aside := state + ".torn-" + time.Now().UTC().Format("20060102T150405")
		if err := os.Rename(state, aside); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("replication: set the torn state aside: %w", err)
		}
		if err := os.RemoveAll(aside); err != nil {
			return false, fmt.Errorf("replication: remove the torn state: %w", err)
		}
		discarded = true
	}
	if err := writeSynced(marker, append(now, '\n')); err != nil {
		return false, fmt.Errorf("replication: mark the state open: %w", err)
	}
	return discarded, nil
}

// markStateClosed removes the open marker once the state database is closed (and synced).
func markStateClosed(dataDir string) error {
	err := os.Remove(filepath.Join(dataDir, stateOpenMarker))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(dataDir)
}

// writeSynced writes a small file and syncs it and its directory.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
