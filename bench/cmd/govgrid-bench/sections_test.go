package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunInWorkDir(t *testing.T) {
	o := options{workDir: t.TempDir()}
	var used string
	got, failed := runInWorkDir(o, "x", func(dir string) (int, error) {
		used = dir
		if st, err := os.Stat(dir); err != nil || !st.IsDir() || filepath.Dir(dir) != o.workDir || !strings.HasPrefix(filepath.Base(dir), "govgrid-x-") {
			t.Errorf("ran in %s (%v), want a new govgrid-x-* directory under --workdir", dir, err)
		}
		return 7, nil
	}, func(n int) bool { return n > 0 })
	if got == nil || *got != 7 || failed != "" {
		t.Fatalf("runInWorkDir = %v, %q", got, failed)
	}
	if _, err := os.Stat(used); !os.IsNotExist(err) {
		t.Errorf("the directory is left behind: %v", err)
	}
	// What was measured before an error is kept with it; nothing measured is nil.
	got, failed = runInWorkDir(o, "x", func(string) (int, error) { return 3, errors.New("boom") }, func(n int) bool { return n > 0 })
	if got == nil || *got != 3 || failed != "boom" {
		t.Fatalf("after an error: %v, %q", got, failed)
	}
	got, failed = runInWorkDir(o, "x", func(string) (int, error) { return 0, errors.New("boom") }, func(n int) bool { return n > 0 })
	if got != nil || failed != "boom" {
		t.Fatalf("nothing measured: %v, %q", got, failed)
	}
	o.workDir = filepath.Join(o.workDir, "missing")
	if _, failed := runInWorkDir(o, "x", func(string) (int, error) { t.Error("ran without a directory"); return 0, nil }, func(int) bool { return true }); failed == "" {
		t.Error("a work directory that cannot be made went unreported")
	}
}
