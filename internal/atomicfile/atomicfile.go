// Package atomicfile replaces a small file so that a crash leaves the old file or the new one,
// never part of either: a synced temporary file in the same directory, a rename over the old one,
// then the directory synced, so that the rename itself survives a power cut.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, of mode mode. On an error the old file is as it was and no
// temporary file is left behind.
func Write(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	renamed = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
