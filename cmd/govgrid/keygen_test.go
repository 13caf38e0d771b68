package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govgrid/govgrid/replication"
	"github.com/spf13/pflag"
)

func TestKeygenEncryptionWritesAKeyFileOnce(t *testing.T) {
	out := filepath.Join(t.TempDir(), "enc.key")
	run := func() error {
		root := newRootCommand()
		root.SetArgs([]string{"keygen", "encryption", "--out", out})
		return root.Execute()
	}
	if err := run(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", info.Mode().Perm())
	}
	before, _ := os.ReadFile(out)
	if _, err := replication.LoadEncryptionKey(out); err != nil {
		t.Fatalf("the new key file does not load: %v", err)
	}
	if err := run(); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a second keygen over the file: %v", err)
	}
	if after, _ := os.ReadFile(out); string(after) != string(before) {
		t.Fatal("the key file was overwritten")
	}
}

func TestAgentReadsTheEncryptionKeyFileSetting(t *testing.T) {
	t.Setenv("GOVGRID_ENCRYPTION_KEY_FILE", "/etc/govgrid/enc.key")
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	agentFlags(fs)
	if err := fs.Parse([]string{"--node", "n1", "--site", "cd", "--tier", "district"}); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := agentConfig(fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EncryptionKeyFile != "/etc/govgrid/enc.key" {
		t.Fatalf("EncryptionKeyFile %q from GOVGRID_ENCRYPTION_KEY_FILE", cfg.EncryptionKeyFile)
	}
}
