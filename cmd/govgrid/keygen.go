package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/govgrid/govgrid/replication"
	"github.com/spf13/cobra"
)

// newKeygenCommand makes keys for a node's settings.
func newKeygenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Make keys for a node's settings",
	}
	cmd.AddCommand(newKeygenEncryptionCommand())
	return cmd
}

func newKeygenEncryptionCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "encryption --out FILE",
		Short: "Make a key that encrypts a node's data directory at rest (--encryption-key-file)",
		Long: `Writes 32 random bytes, in base64 on one line, to a new file readable by its owner only (0600).
Give it to the agent with --encryption-key-file. Keep a copy apart from the node: without it an
encrypted data directory cannot be read, and with it, by anyone who has the disk.

  govgrid keygen encryption --out /etc/govgrid/encryption.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out: the file to write the key to is required")
			}
			_, file, err := replication.NewEncryptionKey()
			if err != nil {
				return err
			}
			return writeKeyFile(out, file)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the file to write the key to (must not exist)")
	return cmd
}

// writeKeyFile writes a new file of mode 0600; an existing file is never overwritten (it may be
// the key of an encrypted data directory).
func writeKeyFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("--out %s: the file exists; a key is never overwritten (it may be the only key of a data directory)", path)
		}
		return fmt.Errorf("--out: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	return f.Close()
}
